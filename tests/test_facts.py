"""`ReleaseFacts`: one precedence (the files for what is in the shards, the report for what curation did), read the
same from a folder and from parts in hand, and shown the same by the card, Croissant and ``acav1m info``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from acav1m_hf import card, croissant
from acav1m_hf.facts import FILTERS, SCORES, IndexFacts, ReleaseFacts, format_rate
from acav1m_hf.info import describe_release
from acav1m_hf.release import REPORT, file_sha256, index_name, list_shards


def _rewrite_report(root: Path, **changes: object) -> dict:
    report = json.loads((root / REPORT).read_text())
    report.update(changes)
    (root / REPORT).write_text(json.dumps(report))
    return report


def _yaml_splits(text: str) -> dict[str, int]:
    import yaml

    header = yaml.safe_load(text.split("---\n")[1])
    return {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}


def test_the_index_wins_over_the_report_for_what_is_in_the_shards(release_copy: Path):
    wrong = {s: {"clips": 999, "seconds": 99999.0, "shards": 7, "bytes": 1} for s in list_shards(release_copy)}
    _rewrite_report(release_copy, splits=wrong)
    facts = ReleaseFacts.read(release_copy)
    text, info = card.render(facts), describe_release(release_copy)
    for split, paths in list_shards(release_copy).items():
        rows = pq.ParquetFile(release_copy / index_name(split)).metadata.num_rows
        seconds = sum(pq.read_table(release_copy / index_name(split), columns=["clip.duration"])[0].to_pylist())
        assert facts.splits[split].clips == rows
        assert facts.splits[split].seconds == round(seconds, 3)
        assert facts.splits[split].bytes == sum(p.stat().st_size for p in paths)
        assert _yaml_splits(text)[split] == rows
        assert re.search(rf"^\| {split} \| {rows} \| {seconds / 3600:.3f} \| {len(paths)} \|", text, re.M)
        assert any(line.strip().startswith(f"{split}: {rows} clips, ") for line in info.splitlines())
    assert "| 999 |" not in text and "999 clips" not in info


def test_the_report_wins_for_what_curation_did(release_copy: Path):
    report = _rewrite_report(
        release_copy,
        counts={"inputs": {"total": 41, "kept": 40, "rejected": 1}, "clips": {"total": 43, "kept": 42, "rejected": 1}},
        pass_rates={"language": 0.125, "instance": None, "temporal": 1.0},
    )
    facts = ReleaseFacts.read(release_copy)
    assert facts.curation.counts == report["counts"]
    assert facts.curation.pass_rates == report["pass_rates"]
    text, info = card.render(facts), describe_release(release_copy)
    assert "| clips | 43 | 42 | 1 |" in text and "clips:  42 kept, 1 rejected of 43" in info
    assert "| language | 0.5 | 12.5 % |" in text and "language 12.5 %" in info
    assert "| instance | 0.5 | not computed |" in text and "instance not computed" in info


def test_a_split_without_its_index_has_unknown_clips(release_copy: Path):
    split = next(iter(list_shards(release_copy)))
    (release_copy / index_name(split)).unlink()
    facts = ReleaseFacts.read(release_copy, checksums=False)
    assert facts.splits[split].clips is None and facts.seconds is None
    text = card.render(facts)
    assert re.search(rf"^\| {split} \| unknown \| unknown \|", text, re.M)
    assert "splits:" not in text.split("---\n")[1].split("dataset_info:")[1]  # datasets would check a wrong count


def test_card_croissant_and_info_agree(release: Path):
    facts = ReleaseFacts.read(release)
    text = card.render(facts)
    jsonld = croissant.render(facts)
    info = describe_release(release)
    assert _yaml_splits(text) == {s: v.clips for s, v in facts.with_shards.items()}
    files = {d["contentUrl"]: d for d in jsonld["distribution"] if d["@type"] == "cr:FileObject"}
    assert sorted(files) == sorted(f.path for f in [*facts.shards, *(i.file for i in facts.indexes)])
    for url, entry in files.items():
        assert entry["sha256"] == file_sha256(release / url)
        assert entry["contentSize"] == f"{(release / url).stat().st_size} B"
    for split in facts.with_shards.values():
        assert f"| {split.name} | {split.clips} | {split.hours} | {len(split.shards)} |" in text
        assert any(line.strip().startswith(f"{split.name}: {split.clips} clips, ") for line in info.splitlines())
    for name in FILTERS:
        shown = format_rate(facts.curation.pass_rates[name])
        assert re.search(rf"^\| {name} \| [^|]* \| {re.escape(shown)} \|", text, re.M)
        assert f"{name} {shown}" in info
    for column in SCORES:
        score = facts.scores[column]
        assert f"{column}: {score.scored} of {score.rows} clips scored" in info
        assert score.rows == facts.clips and sum(score.bins) == score.scored


def test_parts_in_hand_give_the_facts_of_the_folder(release: Path):
    """What finalize passes (shard sizes and sha256 it holds, index bytes) gives the facts that reading the folder does."""
    read = ReleaseFacts.read(release)
    report = json.loads((release / REPORT).read_text())
    indexes = {s: IndexFacts.from_bytes(s, (release / index_name(s)).read_bytes()) for s in read.splits}
    built = ReleaseFacts.build(report, read.shards, indexes)
    assert built == read
    assert card.render(built) == card.render(read) and croissant.render(built) == croissant.render(read)
