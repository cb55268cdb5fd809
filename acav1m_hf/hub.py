"""Publish a release folder to, and fetch it from, a Hugging Face Hub dataset repository.

A release folder is already a complete dataset repository (`acav1m_hf.release`):
the card's YAML tells ``datasets`` how to read ``data/*.tar``. Pushing is
therefore one ``create_repo`` plus one ``upload_folder`` commit, restricted to
the files of the layout, and downloading is one ``snapshot_download``.

Honest scope: the tests replace ``HfApi`` and ``snapshot_download`` with
autospec mocks (the library's real signatures) and check the exact calls
(folder, ``repo_type="dataset"``, patterns); no test talks to the Hub, so
authentication, rate limits and large-file upload behaviour are exercised
only by real use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acav1m_hf.facts import ReleaseFacts
from acav1m_hf.lock import output_lock
from acav1m_hf.maintain.remove import REMOVALS
from acav1m_hf.maintain.staging import STAGING
from acav1m_hf.maintain.versions import CHANGELOG
from acav1m_hf.maintain.versions import entry as changelog_entry
from acav1m_hf.release import CARD, CROISSANT, DATA_DIR, INPUTS, METADATA_DIR, REPORT, list_shards, shard_split

REPO_TYPE = "dataset"

RELEASE_PATTERNS: tuple[str, ...] = (
    CARD,
    CROISSANT,
    REPORT,
    INPUTS,
    CHANGELOG,
    REMOVALS,
    f"{DATA_DIR}/*.tar",
    f"{METADATA_DIR}/*.parquet",
)
"""What a push uploads and a download fetches: the release layout, nothing else.

In particular no ``*.py``: ``datasets`` >= 4 refuses a repository named ``X``
that holds ``X.py`` ("Dataset scripts are no longer supported"), so the
loading script must never land at the repository root.
"""

STALE_PATTERNS: tuple[str, ...] = (f"{DATA_DIR}/*.tar", f"{METADATA_DIR}/*.parquet")
"""Remote files of a previous push that this push deletes unless it re-uploads them.

Without this, a re-curated release with fewer shards would leave old
``data/train-00007.tar`` on the Hub, and the card's ``data/train-*.tar``
pattern would silently serve it.
"""


def push_release(
    root: str | os.PathLike[str],
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    *,
    revision: str | None = None,
    commit_message: str | None = None,
    validate: bool = True,
    tag: bool = True,
    api: Any = None,
) -> str:
    """Upload a release folder to the dataset repository ``repo_id`` (created if missing) in one commit.

    ``validate`` runs `acav1m_hf.validate.validate_release` first and refuses to
    push a release that fails it, so a broken shard never reaches users.
    ``private`` applies when the repository is created; an existing
    repository keeps its visibility. Returns the commit URL.

    One push is one version (`acav1m_hf.maintain.versions`): the commit's message is that version's
    ``CHANGELOG.md`` entry (or says it is the first release), and with ``tag`` the commit is tagged
    ``v{version}`` (``create_tag``), so ``load_dataset(repo_id, revision="v1.1.0")`` reads that version. A
    version whose tag is already on the Hub is refused before anything is uploaded.
    ``api`` is an ``HfApi``-like object (default: ``HfApi(token=token)``). The folder's lock (`acav1m_hf.lock`) is
    held throughout, so no ``acav1m remove`` or ``extend`` switches files in while they are uploaded.
    """
    root = Path(root)
    if not (root / CARD).is_file():
        raise FileNotFoundError(f"{root}: no {CARD} (dataset card); is this a release folder?")
    with output_lock(root):  # no edit switches files in while they are validated and uploaded
        return _push(root, repo_id, token, private, revision, commit_message, validate, tag, api)


def _push(
    root: Path,
    repo_id: str,
    token: str | None,
    private: bool,
    revision: str | None,
    commit_message: str | None,
    validate: bool,
    tag: bool,
    api: Any,
) -> str:
    if (root / STAGING).exists():
        raise ValueError(
            f"{root}: an edit that a kill interrupted is pending ({STAGING}/); rerun that acav1m remove or extend first"
        )
    if not list_shards(root):
        raise FileNotFoundError(f"{root}/{DATA_DIR}: no shards named {{split}}-NNNNN.tar")
    if validate:
        from acav1m_hf.validate import validate_release

        errors = validate_release(root)
        if errors:
            shown = "\n  ".join(errors[:20])
            more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise ValueError(f"{root} fails validation; not pushing:\n  {shown}{more}")
    version = ReleaseFacts.read(root, checksums=False).curation.release_version
    tag_name = f"v{version}"
    changelog = root / CHANGELOG
    entry = changelog_entry(changelog.read_text(encoding="utf-8") if changelog.exists() else None, version)
    shards = sum(len(s) for s in list_shards(root).values())
    message = commit_message or (
        f"ACAV-1M release {version}: {entry}" if entry else f"ACAV-1M release {version} ({shards} shards)"
    )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, token=token, private=private, repo_type=REPO_TYPE, exist_ok=True)
    if tag:
        tags = {ref.name for ref in api.list_repo_refs(repo_id, repo_type=REPO_TYPE, token=token).tags}
        if tag_name in tags:
            raise ValueError(
                f"{repo_id}: version {version} ({tag_name}) is already on the Hub; a change to the release "
                "(acav1m remove, acav1m extend) makes a new version to push"
            )
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(root),
        repo_type=REPO_TYPE,
        token=token,
        revision=revision,
        allow_patterns=list(RELEASE_PATTERNS),
        delete_patterns=list(STALE_PATTERNS),
        commit_message=message,
    )
    if tag:
        api.create_tag(
            repo_id, tag=tag_name, tag_message=message, revision=commit.oid, token=token, repo_type=REPO_TYPE
        )
    return str(getattr(commit, "commit_url", commit))


def download_release(
    repo_id: str,
    local_dir: str | os.PathLike[str],
    revision: str | None = None,
    *,
    token: str | None = None,
    patterns: tuple[str, ...] | list[str] | None = None,
    snapshot: Any = None,
) -> Path:
    """Download a release repository into ``local_dir`` (a plain folder, not the HF cache) and return its path.

    The result is a release folder again: ``load(local_dir)``,
    ``stream(local_dir)`` and ``acav1m validate`` work on it offline.
    ``patterns`` narrows what is fetched (default `RELEASE_PATTERNS`; e.g.
    ``["README.md", "data/validation-*.tar"]`` for one split).
    ``snapshot`` replaces ``huggingface_hub.snapshot_download`` (tests).
    """
    if snapshot is None:
        from huggingface_hub import snapshot_download as snapshot
    path = snapshot(
        repo_id,
        repo_type=REPO_TYPE,
        revision=revision,
        local_dir=str(local_dir),
        token=token,
        allow_patterns=list(patterns) if patterns is not None else list(RELEASE_PATTERNS),
    )
    return Path(path)


def shard_urls(
    repo_id: str,
    split: str = "train",
    revision: str | None = None,
    *,
    token: str | None = None,
    api: Any = None,
) -> list[str]:
    """HTTPS URLs of one split's shards in a Hub dataset repository, sorted, for `acav1m_hf.streaming.stream`.

    ``stream(shard_urls("user/acav1m"))`` streams from the Hub without
    downloading the release first (webdataset reads ``https://`` with
    ``curl``, without credentials: public repositories only). Raises naming
    the splits that do have shards when ``split`` has none.
    """
    from huggingface_hub import hf_hub_url

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    files = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=revision, token=token)
    found: dict[str, list[str]] = {}
    for name in sorted(files):
        shard_of = shard_split(name)
        if shard_of is not None:
            found.setdefault(shard_of, []).append(name)
    if split not in found:
        raise ValueError(
            f"{repo_id}: no {split!r} shards in {DATA_DIR}/ (splits with shards: {', '.join(found) or 'none'})"
        )
    return [hf_hub_url(repo_id, name, repo_type=REPO_TYPE, revision=revision) for name in found[split]]
