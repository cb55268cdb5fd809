"""``acav1m subset``: a new, complete release of the clips of a release whose index row matches a SQL expression.

The expression is DuckDB's (``"alignment.instance.score" >= 0.7 AND "labels.category.label" = 'Speech'``: names
with dots in double quotes), applied as a filter over the rows of every split's Parquet index, never parsed here.
DuckDB reads only the index already in memory: external access (files, URLs) is switched off before the
expression runs. The subset keeps the splits, the order of the clips and the members' bytes; its shards are
numbered from 0 in each split, its card and Croissant are rendered like curation's, and its ``report.json`` is the
parent's (what curation did) with a ``subset`` entry: the parent's version and the expression. The subset is
written into ``SUB.partial`` beside ``SUB`` and renamed when whole, so a kill never leaves a half subset under
``SUB``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from acav1m_hf import release
from acav1m_hf.facts import FIRST_VERSION, ReleaseFacts
from acav1m_hf.lock import output_lock
from acav1m_hf.maintain import rewrite, versions
from acav1m_hf.maintain.staging import recover
from acav1m_hf.schema import SPLITS


def matching_keys(tables: dict[str, Any], where: str) -> set[str]:
    """The keys of the rows of ``tables`` (index tables by split) for which the SQL expression ``where`` is true."""
    import duckdb
    import pyarrow as pa

    rows = pa.concat_tables(tables.values())
    connection = duckdb.connect()
    try:
        relation = connection.from_arrow(rows)
        connection.execute("SET enable_external_access = false")
        try:
            selected = relation.filter(where).project('"key"').fetchall()
        except (duckdb.Error, RuntimeError) as exc:
            raise ValueError(f"--where {where!r}: {exc}") from None
    finally:
        connection.close()
    return {key for (key,) in selected}


def write_subset(root: str | Path, out: str | Path, where: str) -> ReleaseFacts:
    """Write the subset of the release ``root`` where ``where`` holds to the new folder ``out``; return its facts.

    The source's lock is held meanwhile (no edit switches its files in while they are read), and an edit of it that
    a kill interrupted is finished or undone first (`staging.recover`)."""
    root, out = Path(root), Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: already exists; a subset is written to a new folder")
    if not (root / release.REPORT).is_file():
        raise FileNotFoundError(f"{root}: no {release.REPORT}; is this a release folder?")
    with output_lock(root):
        recover(root)
        versions.check_schema(root, json.loads((root / release.REPORT).read_text(encoding="utf-8")), "subset")
        return _write_subset(root, out, where)


def _write_subset(root: Path, out: Path, where: str) -> ReleaseFacts:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = {s: pq.read_table(root / release.index_name(s)) for s in SPLITS if (root / release.index_name(s)).exists()}
    if not tables:
        raise FileNotFoundError(f"{root}: no index under {release.METADATA_DIR}/; is this a release folder?")
    keys = matching_keys(tables, where)
    if not keys:
        raise ValueError(f"--where {where!r}: no clip of {root} matches")
    partial = out.with_name(f"{out.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by a killed subset: never a release
    (partial / release.DATA_DIR).mkdir(parents=True)
    (partial / release.METADATA_DIR).mkdir()
    shards, indexes = [], {}
    for split, table in tables.items():
        chosen = table.filter(pc.is_in(table["key"], value_set=pa.array(sorted(keys), pa.string())))
        if chosen.num_rows == 0:
            continue
        renamed: dict[str, str] = {}
        for shard in dict.fromkeys(chosen["shard"].to_pylist()):  # in index order, each once
            renamed[shard] = release.shard_name(split, len(renamed))
            rewrite.copy_shard(root / shard, partial / renamed[shard], keys)
            shards.append(rewrite.file_facts(renamed[shard], partial / renamed[shard]))
        column = chosen.schema.get_field_index("shard")
        new_names = pa.array([renamed[s] for s in chosen["shard"].to_pylist()], pa.string())
        indexes[split] = rewrite.index_bytes(chosen.set_column(column, "shard", new_names))
        (partial / release.index_name(split)).write_bytes(indexes[split])
    report = json.loads((root / release.REPORT).read_text(encoding="utf-8"))
    parent = ReleaseFacts.build(report, [], {}).curation.release_version
    report.update(release_version=FIRST_VERSION, subset={"of_version": parent, "where": where, "clips": len(keys)})
    report.pop("date_modified", None)
    facts = rewrite.build_facts(report, shards, indexes)
    report["splits"] = rewrite.split_totals(facts)
    facts = rewrite.build_facts(report, shards, indexes)
    for rel, text in {**rewrite.card_and_croissant(facts), release.REPORT: rewrite.report_text(report)}.items():
        (partial / rel).write_text(text, encoding="utf-8")
    if (root / release.INPUTS).exists():
        shutil.copyfile(root / release.INPUTS, partial / release.INPUTS)
    os.replace(partial, out)
    return facts
