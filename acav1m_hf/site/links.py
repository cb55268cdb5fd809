"""Hrefs from the site to the release's own files (shards, indexes, card, report)."""

from __future__ import annotations

import os
from pathlib import Path

from acav1m_hf.release import SHARD_PATTERN


class Links:
    """Hrefs to release files: ``base_url`` + path, or a path relative to the site folder.

    Relative paths work from ``file://`` and on any host when the site sits inside or next to the release;
    ``base_url`` (e.g. the Hub's ``resolve/main/``) makes every link absolute for a site hosted apart from the data.
    """

    def __init__(self, root: Path, out: Path, base_url: str | None) -> None:
        self.root, self.out = root, out
        self.base_url = base_url.rstrip("/") + "/" if base_url else None

    def href(self, release_path: str) -> str:
        if self.base_url:
            return self.base_url + release_path
        rel = os.path.relpath(self.root.resolve() / release_path, self.out.resolve())
        return Path(rel).as_posix()

    def shard(self, shard: str) -> str | None:
        """Href of a shard, or None when the index names something that is not a shard path."""
        parts = shard.split("/")
        if len(parts) != 2 or parts[0] != "data" or not SHARD_PATTERN.match(parts[1]):
            return None
        return self.href(shard)
