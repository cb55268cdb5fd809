"""Maintaining a published release without curating it again: takedowns, subsets, versions and their differences.

* `remove.remove_videos` (``acav1m remove``): every clip of some videos leaves the release; only the shards that held
  them are rewritten, everything the files describe (index, card, Croissant, report) follows, and the removal is
  recorded in ``CHANGELOG.md`` and ``removals.jsonl`` under a new minor version.
* `subset.write_subset` (``acav1m subset``): a new, complete release of the clips whose index row matches a SQL
  expression (DuckDB).
* `versions`: the release version, its changelog, the bump rule (minor for a change, major for a schema change) and
  the refusal of a release under another schema; `diff.diff_releases` (``acav1m diff``): clips added, removed and
  changed between two releases.

``acav1m extend`` curates, so it lives in `curation.extend` and uses `staging`, `rewrite` and `versions` from here.
Every edit of a folder in place goes through `staging.Staging`: the new files are written beside the old ones and
switched in after, so a kill at any moment leaves the old release or, after the next command, the new one. Every
command holds the folder's lock (`acav1m_hf.lock`) meanwhile.
"""
