"""Maintaining a published release without curating it again: takedowns, subsets, versions and their differences.

* `remove.remove_videos` (``acav1m remove``): every clip of some videos leaves the release; only the shards that held
  them are rewritten, everything the files describe (index, card, Croissant, report) follows, and the removal is
  recorded in ``CHANGELOG.md`` and ``removals.jsonl`` under a new minor version.
* `subset.write_subset` (``acav1m subset``): a new, complete release of the clips whose index row matches a SQL
  expression (DuckDB).
* `versions`: the release version and its changelog; `diff.diff_releases` (``acav1m diff``): clips added, removed
  and changed between two releases.

Every edit of a folder in place goes through `staging.Staging`: the new files are written beside the old ones and
switched in after, so a kill at any moment leaves the old release or, after the next command, the new one.
"""
