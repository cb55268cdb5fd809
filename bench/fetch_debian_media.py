"""Fetch the real clips of `bench/debian_media.csv` from the Debian archive into a folder, for the alignment benchmark.

They are not in the repository (their licences are the packages', see the CSV); `apt-get download` fetches the
exact package version the CSV names from the suite it names, and `dpkg-deb -x` unpacks it, so anyone with
deb.debian.org gets the same files:

    python bench/fetch_debian_media.py -o bench/out/debian_media
    acav1m evaluate-alignment ... bench/out/debian_media --kinds bench/alignment_kinds.csv ...

Each suite's package index is read into a scratch folder through a private apt configuration (`APT_CONFIG`), so
the machine's own apt sources and state are neither needed nor touched: a bookworm machine fetches sid's packages.
Validity dates are not checked (``Acquire::Check-Valid-Until``): a machine whose clock runs ahead of the mirror's
signature would refuse sid's index otherwise, and the sha256 of every file is checked against the CSV anyway.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

LIST = Path(__file__).with_name("debian_media.csv")
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def fetch(out: Path) -> list[Path]:
    """Each listed clip as ``out / name``, fetched from its package unless there with the listed sha256."""
    out.mkdir(parents=True, exist_ok=True)
    with open(LIST, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [
        row for row in rows if not ((out / row["name"]).exists() and _sha256(out / row["name"]) == row["sha256"])
    ]
    with tempfile.TemporaryDirectory() as scratch:
        apt = {suite: _apt(suite, Path(scratch) / suite) for suite in sorted({row["suite"] for row in missing})}
        for row in missing:
            _fetch_one(row, out / row["name"], apt[row["suite"]], Path(scratch) / "unpack")
    return [out / row["name"] for row in rows]


def _apt(suite: str, root: Path) -> dict[str, str]:
    """The environment under which apt-get sees ``suite``'s index (read now into ``root``) and nothing else."""
    for folder in (
        "etc/apt.conf.d",
        "etc/preferences.d",
        "etc/sources.list.d",
        "lists/partial",
        "cache/archives/partial",
    ):
        (root / folder).mkdir(parents=True)
    (root / "status").touch()
    (root / "etc/sources.list").write_text(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n", encoding="utf-8")
    settings = {
        "Dir::Etc": root / "etc",
        "Dir::Etc::main": "/dev/null",
        "Dir::State": root,
        "Dir::State::Lists": root / "lists",
        "Dir::State::status": root / "status",
        "Dir::Cache": root / "cache",
        "Acquire::Check-Valid-Until": "false",
    }
    config = root / "apt.conf"
    config.write_text("".join(f'{key} "{value}";\n' for key, value in settings.items()), encoding="utf-8")
    env = {**os.environ, "APT_CONFIG": str(config)}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
    return env


def _fetch_one(row: dict[str, str], target: Path, env: dict[str, str], unpack: Path) -> None:
    """Download the row's package, check the listed file's sha256 and move it to ``target`` whole."""
    spec = f"{row['package']}={row['version']}"
    shutil.rmtree(unpack, ignore_errors=True)
    unpack.mkdir()
    download = subprocess.run(["apt-get", "download", "-q", spec], cwd=unpack, env=env, capture_output=True, text=True)
    if download.returncode:
        raise SystemExit(
            f"{row['name']}: {spec} is not in Debian {row['suite']} any more ({download.stderr.strip()}); "
            f"snapshot.debian.org keeps every version: fetch it there and put the file in {target.parent}"
        )
    (deb,) = unpack.glob("*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpack / "root")], check=True)
    fetched = unpack / "root" / row["path"]
    if _sha256(fetched) != row["sha256"]:
        raise SystemExit(f"{spec}: {row['path']} is not the file listed in {LIST} (sha256 differs)")
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(fetched, partial)
    partial.replace(target)  # whole or not at all


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/out/debian_media"))
    for path in fetch(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
