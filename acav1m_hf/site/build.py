"""`build_site`: a release folder in, a site folder out; and the site folder's safety rules.

The order is one direction: read the card and report (`reading`), write the chunked index and copy the media
(`index`, `media`), then render the pages (`pages`) from what that pass gathered. Everything is written to a hidden
staging folder beside ``out`` and moved in at the end, so a shard that fails half-way leaves ``out`` as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from acav1m_hf.release import CROISSANT, REPORT
from acav1m_hf.site.index import DEFAULT_CHUNK_ROWS, build_index, write_js, write_terms
from acav1m_hf.site.links import Links
from acav1m_hf.site.media import DEFAULT_MAX_MEDIA
from acav1m_hf.site.pages import Release, render_pages
from acav1m_hf.site.reading import read_card, read_json

MARKER = ".acav1m-site"
"""Written into every site folder, so a rebuild only ever deletes a folder it made itself."""
ASSETS = Path(__file__).with_name("assets")
"""style.css and browse.js, copied into every site as they are."""


def build_site(
    root: Path,
    out: Path,
    *,
    max_media: int = DEFAULT_MAX_MEDIA,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    base_url: str | None = None,
    repo_id: str | None = None,
) -> Path:
    """Build the static site of the release at ``root`` into ``out`` and return ``out``.

    ``max_media`` clips (spread over the splits) get their mp4, mask and keyframe
    copied into ``out/media`` so they play from any static host; the others show
    metadata only, because copying a million clips into a website is not a website.
    Links to shards and index files point to ``base_url`` + their release path
    when given (e.g. the Hub's ``resolve/main/``), else to their path relative to
    ``out`` (works when the site lives inside or next to the release).
    ``repo_id`` (``org/name``) fills the ``load_dataset`` examples.

    The site is built in a hidden folder beside ``out`` and moved in when complete, replacing only what a build
    writes. A shard that cannot be read (truncated, empty, compressed, a refused member, a clip the index puts
    there but the shard lacks) raises `ValueError` naming the shard and the reason, and leaves ``out`` as it was.
    """
    root, out = Path(root), Path(out)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    _check_out(out)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # innermost first
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        _prepare_out(staging)
        card_meta, card_body = read_card(root)
        report = read_json(root / REPORT)
        links = Links(root, out, base_url)

        index = build_index(root, staging, chunk_rows, max_media)
        write_terms(staging, index.terms)
        write_js(staging / "data" / "manifest.js", "ACAV.manifest", index.manifest(links))

        if (root / CROISSANT).is_file():
            shutil.copyfile(root / CROISSANT, staging / CROISSANT)
        for name in ("style.css", "browse.js"):
            shutil.copyfile(ASSETS / name, staging / "assets" / name)

        release = Release(root, card_meta, card_body, report, index, links, repo_id)
        for name, html in render_pages(release).items():
            (staging / name).write_text(html, encoding="utf-8")
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # only the folders this run created, empty again
            folder.rmdir()
        raise
    staging.rmdir()
    return out


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FileExistsError(f"{out} is not empty and was not made by `acav1m site`; refusing to overwrite it")


def _prepare_out(out: Path) -> None:
    for sub in ("assets", "data/chunks", "data/terms", "media"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Built by `acav1m site`; the folder is replaced on rebuild.\n", encoding="utf-8")


def _install(staging: Path, out: Path) -> None:
    """Replace what an earlier build wrote in ``out`` with the finished build; anything else in ``out`` stays."""
    out.mkdir(exist_ok=True)
    for name in {"assets", "data", "media", CROISSANT, *(p.name for p in staging.iterdir())}:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if (staging / name).exists():
            os.replace(staging / name, target)
