"""The dataset card: its YAML drives `load_dataset`, its body documents the release and the datasheet."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acav1m_hf import card, datasheet
from acav1m_hf.card import TASK_CATEGORIES, size_category
from acav1m_hf.facts import CurationFacts, ReleaseFacts
from acav1m_hf.release import CARD, REPORT, index_name, list_shards
from acav1m_hf.schema import MEMBERS, hf_features, index_columns

SEED = Path(__file__).parent / "data" / "ACAV-1M-supplementary-sections-1-5.txt"
"""The datasheet's source: sections 1-5 of the paper's supplementary material (provenance: tests/data/README.md)."""

HUB_DATASET_TASKS = {
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "text2text-generation", "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio",
    "automatic-speech-recognition", "audio-to-audio", "audio-classification", "voice-activity-detection",
    "depth-estimation", "image-classification", "object-detection", "image-segmentation", "text-to-image",
    "image-to-text", "image-to-image", "image-to-video", "unconditional-image-generation", "video-classification",
    "reinforcement-learning", "robotics", "tabular-classification", "tabular-regression", "tabular-to-text",
    "table-to-text", "multiple-choice", "text-ranking", "text-retrieval", "time-series-forecasting", "text-to-video",
    "visual-question-answering", "zero-shot-image-classification", "graph-ml", "mask-generation",
    "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction", "video-text-to-text",
}  # fmt: skip
"""Task ids of huggingface.js ``packages/tasks/src/pipelines.ts`` that the Hub shows for datasets."""


def _card(root: Path):
    from huggingface_hub import DatasetCard

    return DatasetCard.load(root / CARD)


def _report(root: Path) -> dict:
    return json.loads((root / REPORT).read_text())


def test_yaml_header_is_a_valid_hub_header(release: Path):
    data = _card(release).data
    assert data.license == "cc-by-4.0"
    assert data.pretty_name == "ACAV-1M"
    assert set(data.task_categories) == set(TASK_CATEGORIES) <= HUB_DATASET_TASKS
    rows = sum(pq.ParquetFile(release / index_name(s)).metadata.num_rows for s in list_shards(release))
    assert data.size_categories == [size_category(rows)]
    (config,) = data.configs
    assert config["config_name"] == "default"
    assert config["data_files"] == [{"split": s, "path": f"data/{s}-*.tar"} for s in list_shards(release)]


def test_yaml_features_are_the_schema(release: Path):
    from datasets.info import DatasetInfosDict

    info = DatasetInfosDict.from_dataset_card_data(_card(release).data)["default"]
    assert info.features == hf_features()
    report = _report(release)
    for split in list_shards(release):
        rows = pq.ParquetFile(release / index_name(split)).metadata.num_rows
        assert info.splits[split].num_examples == rows == report["splits"][split]["clips"]


def test_load_dataset_uses_the_card(release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from datasets import load_dataset, load_dataset_builder

    assert load_dataset_builder(str(release), cache_dir=str(tmp_path)).info.features == hf_features()
    monkeypatch.chdir(release.parent)  # load_dataset("acav1m") finds ./acav1m before the Hub
    dataset = load_dataset(release.name, cache_dir=str(tmp_path))
    shards = list_shards(release)
    assert list(dataset) == list(shards)
    for split, part in dataset.items():
        assert part.features == hf_features()
        assert part.num_rows == pq.ParquetFile(release / index_name(split)).metadata.num_rows
    streamed = load_dataset(str(release), streaming=True)
    split = next(iter(shards))
    assert streamed[split].features == hf_features()
    assert next(iter(streamed[split]))["__key__"] == dataset[split][0]["__key__"]


def test_body_documents_schema_release_and_datasheet(release: Path):
    body = _card(release).text
    for name, field in index_columns():
        assert re.search(rf"^\| `{re.escape(name)}` \| [^|]+ \| {re.escape(field.description)}", body, re.M), name
    for member in MEMBERS:
        assert f"| `{member.extension}` |" in body
    report = _report(release)
    for split, stats in report["splits"].items():
        assert re.search(rf"^\| {split} \| {stats['clips']} \| {stats['seconds'] / 3600:.3f} \|", body, re.M)
    for name, rate in report["pass_rates"].items():
        shown = "not computed" if rate is None else f"{100 * rate:.1f} %"
        assert re.search(rf"^\| {name} \| [^|]* \| {re.escape(shown)} \|", body, re.M), name
    for _, entry in datasheet.all_entries():
        assert entry.answer in body
        assert entry.question in body
    assert "```bibtex\n" + datasheet.CITATION + "\n```" in body
    assert datasheet.LICENSE_URL in body and datasheet.WEBSITE in body
    assert "None" not in body


def test_card_lists_the_licence_of_every_model_of_the_profile(release: Path):
    """The cpu profile's models (curation/models/cpu_models.csv) reach the card through report.json."""
    from curation.models.licences import model_licences

    rows = model_licences("cpu")
    assert _report(release)["model_licences"] == rows
    assert {r["licence"] for r in rows} == {"Apache-2.0", "MIT"}
    assert {r["role"] for r in rows} == {"aligner", "transcriber", "condenser", "embedder"}
    body = _card(release).text
    assert "Models of the `cpu` profile and their licences" in body
    for row in rows:
        cells = [row[k] for k in card.LICENCE_COLUMNS]  # no cell holds a "|" or a line break
        assert "| " + " | ".join(cells) + " |" in body, row
    body = card.render(_with_report(release, {"model_licences": [{"role": 1}], "config": {"profile": "paper"}}))
    assert "their licences" not in body  # a foreign report's rows that are not text are left out


def test_curation_wrote_the_card_that_render_gives(release: Path):
    assert (release / CARD).read_text(encoding="utf-8") == card.render(ReleaseFacts.read(release, checksums=False))


def _with_report(release: Path, report: dict) -> ReleaseFacts:
    return dataclasses.replace(ReleaseFacts.read(release, checksums=False), curation=CurationFacts.from_report(report))


def test_card_survives_a_sparse_report(release: Path):
    body = card.render(_with_report(release, {"pass_rates": {"language": None}}))
    assert "| language |  | not computed |" in body
    assert "| instance |  | not computed |" in body
    assert card.render(_with_report(release, {})).startswith("---\nlicense: cc-by-4.0\n")


def test_card_names_what_the_calibration_does_to_each_score(release: Path):
    """The shipped calibration's maps reach the card through report.json: one row per cue and score."""
    from curation.calibration import SHIPPED, calibration_maps
    from curation.config import CurationConfig

    report = _report(release)
    expected = calibration_maps("cues-v2", CurationConfig(calibration=str(SHIPPED / "cues-v2.json")))
    body = card.render(
        _with_report(release, {**report, "calibration": {"calibrated": True}, "calibration_maps": expected})
    )
    assert "| `lips` | instance | cues-v2, lips cue | P(own soundtrack); 0.5 is chance |" in body
    for row in expected:
        if row["state"] == "null":
            assert f"| {row['score']} | {row['map']} | null: {row['reason']} |" in body
    assert "| a cue without maps of its own | temporal |" in body  # the aligner-wide map's row
    foreign = [{"cue": 3, "score": "instance", "state": "null"}, {"score": "all", "state": "calibrated"}]
    body = card.render(
        _with_report(release, {**report, "calibration": {"calibrated": True}, "calibration_maps": foreign})
    )
    assert "What the calibration does" not in body  # a foreign report's records are left out, not guessed at
    uncalibrated = card.render(_with_report(release, {**report, "calibration_maps": expected}))
    assert "What the calibration does" not in uncalibrated  # no table where the report says uncalibrated


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 1_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "1M<n<10M",
    ]


# --------------------------------------------------------------------------- the datasheet itself


def test_datasheet_has_every_section_and_question():
    counts = {s.title: len(s.entries) for s in datasheet.SECTIONS}
    assert counts == {
        "Motivation": 4,
        "Composition": 17,
        "Collection process": 14,
        "Preprocessing / cleaning / labeling": 4,
        "Uses": 6,
        "Distribution": 7,
        "Maintenance": 8,
    }
    unanswered = [e.question.split("?")[0] for _, e in datasheet.all_entries() if not e.answered]
    assert unanswered == [
        "Is any information missing from individual instances",
        "Are there recommended data splits (e.g., training, development/validation, testing)",
        "Does the dataset contain data that, if viewed directly, might be offensive, insulting, threatening, or "
        "might otherwise cause anxiety",
        "Does the dataset relate to people",
        "Will the dataset be distributed under a copyright or other intellectual property (IP) license, and/or "
        "under applicable terms of use (ToU)",
    ]


def _words(text: str) -> str:
    """Text without the PDF extraction's line numbers, markup and spacing, for containment checks."""
    text = re.sub(r" ?\[sic\]|\*\*", "", text).replace("\u2019", "'")  # our [sic] marks; the PDF's bold, quotes
    text = re.sub(r"^[ \t]*-[ \t]+", "", text, flags=re.M)  # list markers the extraction put on every line
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # words hyphenated across lines
    words = [w for w in re.split(r"\s+", text) if w and not w.isdigit()]
    return " ".join(words)


def test_every_answer_is_transcribed_word_for_word():
    seed = _words(SEED.read_text(encoding="utf-8"))
    for section, entry in datasheet.all_entries():
        if entry.answered:
            assert _words(entry.answer) in seed, (section, entry.answer)
    for text in (datasheet.AUTHOR_STATEMENT, datasheet.HOSTING, datasheet.DESCRIPTION):
        assert _words(text) in seed
