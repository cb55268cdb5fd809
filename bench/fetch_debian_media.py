"""Fetch the real clips of `bench/debian_media.csv` from the Debian archive into a folder, for the alignment benchmark.

They are not in the repository (their licences are the packages', see the CSV); `apt-get download` fetches the
exact package version the CSV names and `dpkg-deb -x` unpacks it, so anyone on Debian gets the same files:

    python bench/fetch_debian_media.py -o bench/out/debian_media
    acav1m evaluate-alignment ... bench/out/debian_media --kinds bench/alignment_kinds.csv ...
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

LIST = Path(__file__).with_name("debian_media.csv")


def fetch(out: Path) -> list[Path]:
    """Each listed clip as ``out / name``, fetched from its package unless there with the listed sha256."""
    out.mkdir(parents=True, exist_ok=True)
    with open(LIST, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    written = []
    for row in rows:
        target = out / row["name"]
        if not (target.exists() and _sha256(target) == row["sha256"]):
            with tempfile.TemporaryDirectory() as work:
                spec = f"{row['package']}={row['version']}"
                subprocess.run(["apt-get", "download", "-q", spec], cwd=work, check=True)
                (deb,) = Path(work).glob("*.deb")
                subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(work) / "root")], check=True)
                fetched = Path(work) / "root" / row["path"]
                if _sha256(fetched) != row["sha256"]:
                    raise SystemExit(f"{spec}: {row['path']} is not the file listed in {LIST} (sha256 differs)")
                partial = target.with_name(target.name + ".partial")
                shutil.copyfile(fetched, partial)
                partial.replace(target)  # whole or not at all
        written.append(target)
    return written


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/out/debian_media"))
    for path in fetch(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
