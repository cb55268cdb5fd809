"""The three HTML pages: what each shows, gathered here from the index, the report and the card; how, in templates/.

The Jinja2 environment autoescapes every value, so text from the data (the card's title, labels, reasons, paths)
never becomes markup. The one piece of HTML that enters a page as markup is the card's body, which markdown-it-py
renders with raw HTML off (see `markdown`). The browser page fills itself from the data files with ``textContent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from acav1m_hf.facts import ReleaseFacts, format_rate
from acav1m_hf.release import CARD, CROISSANT, REPORT, index_name
from acav1m_hf.schema import SPLITS
from acav1m_hf.site.charts import histogram_chart, labels_chart
from acav1m_hf.site.index import SCORES, Index
from acav1m_hf.site.links import Links
from acav1m_hf.site.markdown import render_markdown
from acav1m_hf.site.reading import citation, croissant_record_set

NAV = (("index.html", "Overview"), ("browse.html", "Browse clips"), ("distributions.html", "Distributions"))


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f} h" if hours >= 10 else f"{hours:,.2f} h" if hours >= 0.1 else f"{seconds / 60:,.1f} min"


def _size(path: Path) -> str:
    try:
        n: float = path.stat().st_size
    except OSError:
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("acav1m_hf.site"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.filters.update(thousands="{:,}".format, hours=_hours, percent=format_rate, g="{:g}".format)
    return env


_ENV = _environment()


@dataclass
class Release:
    """What the pages are made from: the release folder, its card and report, and the index gathered from it."""

    root: Path
    card_meta: dict[str, Any]
    card_body: str
    report: dict[str, Any]
    index: Index
    links: Links
    repo_id: str | None

    @property
    def title(self) -> str:
        name = self.card_meta.get("pretty_name")
        return str(name) if name else "ACAV-1M"


def render_pages(release: Release) -> dict[str, str]:
    """File name -> HTML of each page."""
    return {
        "index.html": _render("index.html", "Overview", release, **_overview(release)),
        "browse.html": _render(
            "browse.html", "Browse clips", release, scripts=["assets/browse.js", "data/manifest.js"], scores=SCORES
        ),
        "distributions.html": _render("distributions.html", "Distributions", release, **_distributions(release)),
    }


def _render(name: str, page_title: str, release: Release, scripts: list[str] | None = None, **values: Any) -> str:
    template = _ENV.get_template(name)
    return template.render(
        page_title=page_title, site_title=release.title, nav=NAV, current=name, scripts=scripts or [], **values
    )


def _flatten_counts(value: Any, prefix: str = "") -> list[tuple[str, Any]]:  # noqa: ANN401 - nested report counts
    if isinstance(value, dict):
        rows = []
        for k, v in value.items():
            rows += _flatten_counts(v, f"{prefix}{k}" if not prefix else f"{prefix} / {k}")
        return rows
    return [(prefix, value)]


def _overview(release: Release) -> dict[str, Any]:
    """index.html: tiles, splits, pass rates, curation counts, loading examples, downloads, license, the card."""
    root, index, links, report = release.root, release.index, release.links, release.report
    facts = ReleaseFacts.read(root, checksums=False)  # the card's, the Croissant's and `acav1m info`'s figures
    splits = {name: split for name, split in facts.with_shards.items() if split.clips}
    tiles = [
        (f"{facts.clips:,}", "clips"),
        (_hours(sum(split.seconds for split in splits.values())), "of audio-visual clips"),
        (f"{len(facts.shards):,}", "WebDataset shards"),
        (f"{len(index.labels):,}", "class labels"),
    ]
    downloads = []
    if (root / CROISSANT).is_file():  # build_site copies it into the site
        downloads.append(("croissant.json", CROISSANT, "Croissant 1.0 JSON-LD (copy)", ""))
    for name in (CARD, REPORT):
        if (root / name).is_file():
            downloads.append((links.href(name), name, "in the release", _size(root / name)))
    for split in SPLITS:
        if (root / index_name(split)).is_file():
            downloads.append(
                (links.href(index_name(split)), index_name(split), "Parquet index", _size(root / index_name(split)))
            )
    train_shards = len(facts.splits["train"].shards) if "train" in facts.splits else 1
    return {
        "tiles": tiles,
        "split_rows": [(name, split.clips, split.seconds, len(split.shards)) for name, split in splits.items()],
        "rate_rows": [
            (s, facts.curation.pass_rates.get(s), index.histograms[s].threshold, index.histograms[s].nulls)
            for s in SCORES
        ],
        "counts": _flatten_counts(report["counts"]) if report.get("counts") else [],
        "repo": release.repo_id or "/path/to/acav1m",
        "record_set": croissant_record_set(root),
        "webdataset_pattern": "data/train-00000.tar"
        if train_shards == 1
        else f"data/train-{{00000..{train_shards - 1:05d}}}.tar",
        "downloads": downloads,
        "shards": [(links.href(shard.path), shard.path, _size(root / shard.path)) for shard in facts.shards],
        "license_id": str(release.card_meta.get("license") or "cc-by-4.0"),
        "citation": citation(release.card_body),
        "card_html": Markup(render_markdown(release.card_body)) if release.card_body.strip() else None,
    }


def _distributions(release: Release) -> dict[str, Any]:
    """distributions.html: each score's histogram and figures, then the most frequent labels."""
    index = release.index
    scores = [
        {
            "name": s,
            "hist": index.histograms[s],
            "chart": histogram_chart(index.histograms[s], s),
            "flag": index.flags.get(s),
        }
        for s in SCORES
    ]
    top_labels = index.label_counts.most_common(20)
    return {"scores": scores, "labels": labels_chart(top_labels, index.labels) if top_labels else None}
