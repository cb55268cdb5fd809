"""Every input is accounted for: folders judged by content, special files never opened, URLs fetched once with
retries, bad manifest rows named, strict JSON, and paths recorded as the user wrote them."""

from __future__ import annotations

import json
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest

from acav1m_hf import release as layout
from acav1m_hf import strict_json
from acav1m_hf.validate import validate_release
from curation import fetch
from curation.config import CurationConfig
from curation.inputs import read_inputs
from curation.run import CurationError, curate
from tests.media_server import MediaServer
from tests.synthetic import make_clip, write_audio_only, write_video_file

FAST = CurationConfig(clip_seconds=4.0, max_side=128, keep_flagged=True)
"""Flagged clips are kept: what is kept here depends on the input alone, not on the alignment filters."""


def quiet(message: str) -> None:
    """Curation's progress lines are not under test here."""


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def strict_loads(text: str) -> object:
    """`json.loads` as a strict parser reads it: NaN and infinities are errors."""
    return json.loads(text, parse_constant=_refuse)


def _lines(root: Path) -> list[dict]:
    return [strict_loads(line) for line in (root / layout.INPUTS).read_text().splitlines()]


def _by_name(root: Path) -> dict[str, dict]:
    return {Path(line["input"]).name: line for line in _lines(root)}


@contextmanager
def watched_fifo(path: Path) -> Iterator[threading.Event]:
    """A FIFO at ``path``; the event is set if anything opened it for reading.

    A writer thread waits in ``open``, which returns only once a reader opens the
    FIFO; it then sets the event and closes, so that a reader gets end-of-file
    instead of hanging. Afterwards the test opens the FIFO itself (non-blocking)
    to release a writer that nobody met.
    """
    os.mkfifo(path)
    opened = threading.Event()
    done = threading.Event()

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)
        if not done.is_set():
            opened.set()
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        done.set()
        release_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        thread.join()
        os.close(release_fd)


def _write_mpeg2(path: Path, form: str, audio_codec: str, seed: int) -> Path:
    """``path`` as MPEG-2 video plus ``audio_codec`` audio in the container ``form`` (VOB and MXF need these)."""
    clip = make_clip(seconds=3.0, seed=seed)
    with av.open(str(path), "w", format=form) as out:
        video = out.add_stream("mpeg2video", rate=25)
        video.width, video.height, video.pix_fmt = clip.frames.shape[2], clip.frames.shape[1], "yuv420p"
        audio = out.add_stream(audio_codec, rate=48_000, layout="stereo")
        for image in clip.frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode(None))
        samples = (np.repeat(clip.audio, 3) * 32767).astype(np.int16)
        size = audio.codec_context.frame_size or 1024
        for start in range(0, len(samples) - size, size):
            chunk = samples[start : start + size]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]).T.reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate, frame.pts = 48_000, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


# --------------------------------------------------------------------------- folders


def test_a_folder_is_judged_by_content_and_every_entry_gets_a_line(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    write_video_file(folder / "phone.3gp", make_clip(seconds=3.0, seed=1), container="3gp")
    write_video_file(folder / "old.wmv", make_clip(seconds=3.0, seed=2), container="asf")
    write_video_file(folder / "camera.mts", make_clip(seconds=3.0, seed=3), container="mpegts")
    write_video_file(folder / "sub" / "disc.m2ts", make_clip(seconds=3.0, seed=4), container="mpegts")
    write_video_file(folder / "sub" / "film.divx", make_clip(seconds=3.0, seed=5), container="avi")
    write_video_file(folder / "sub" / "stream.asf", make_clip(seconds=3.0, seed=6), container="asf")
    _write_mpeg2(folder / "dvd.vob", "vob", "mp2", seed=7)
    _write_mpeg2(folder / "studio.mxf", "mxf", "pcm_s16le", seed=8)
    write_video_file(folder / "named.mp4", make_clip(seconds=3.0, seed=9))
    write_video_file(folder / "no_suffix", make_clip(seconds=3.0, seed=10))
    write_audio_only(folder / "song.m4a")
    (folder / "notes.txt").write_text("shot list\n" * 50)
    (folder / "broken.mp4").write_bytes(b"not an mp4 at all" * 100)
    (folder / "empty.mkv").write_bytes(b"")
    (folder / ".DS_Store").write_bytes(b"\0" * 64)
    (folder / ".cache" / "a.mp4").write_bytes(b"x")
    with tarfile.open(folder / "cache.tar", "w") as tar:
        tar.add(folder / "notes.txt", arcname="notes.txt")
    (folder / "elsewhere").symlink_to(tmp_path / "nowhere")
    (folder / "linked_folder").symlink_to(folder / "sub")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "control.sock"))
    with watched_fifo(folder / "p.mp4") as opened:
        items, problems = read_inputs([str(folder)])
    server.close()
    assert not opened.is_set(), "the FIFO was opened"

    assert sorted(Path(item.path).name for item in items) == sorted(
        ["phone.3gp", "old.wmv", "camera.mts", "disc.m2ts", "film.divx", "stream.asf", "dvd.vob", "studio.mxf"]
        + ["named.mp4", "no_suffix", "broken.mp4"]  # a video suffix is tried as is: its decoder says what is wrong
    )
    reasons = {Path(p.input).name: p.reason for p in problems}
    assert reasons == {
        "song.m4a": "no_video_stream",
        "notes.txt": "skipped_not_media",
        "cache.tar": "skipped_not_media",
        "empty.mkv": "empty_file",
        ".DS_Store": "skipped_hidden",
        ".cache": "skipped_hidden",
        "elsewhere": "not_found",
        "linked_folder": "not_a_regular_file",
        "control.sock": "not_a_regular_file",
        "p.mp4": "not_a_regular_file",
    }
    entries = {p.name for p in folder.iterdir()} - {"sub"} | {p.name for p in (folder / "sub").iterdir()}
    assert {Path(item.path).name for item in items} | set(reasons) == entries  # each once: the lists have no repeats
    assert len(items) + len(problems) == len(entries)
    assert "FIFO" in next(p.detail for p in problems if p.input.endswith("p.mp4"))


def test_formats_found_by_content_curate_and_every_file_is_in_inputs_jsonl_and_report(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_video_file(folder / "phone.3gp", make_clip(seconds=3.0, seed=1), container="3gp")
    write_video_file(folder / "old.wmv", make_clip(seconds=3.0, seed=2), container="asf")
    write_video_file(folder / "camera.mts", make_clip(seconds=3.0, seed=3), container="mpegts")
    _write_mpeg2(folder / "dvd.vob", "vob", "mp2", seed=7)
    write_audio_only(folder / "song.m4a")
    (folder / "notes.txt").write_text("shot list\n")
    (folder / "empty.mp4").write_bytes(b"")
    root = tmp_path / "out"
    with watched_fifo(folder / "p.mp4") as opened:
        report = curate([str(folder)], root, FAST, log=quiet)
    assert not opened.is_set()

    lines = _by_name(root)
    assert set(lines) == {p.name for p in folder.iterdir()}
    for name in ("phone.3gp", "old.wmv", "camera.mts", "dvd.vob"):
        assert lines[name]["outcome"] == "kept" and lines[name]["clips"] >= 1, lines[name]
    expected = {
        "song.m4a": "no_video_stream",
        "notes.txt": "skipped_not_media",
        "empty.mp4": "empty_file",
        "p.mp4": "not_a_regular_file",
    }
    assert {name: lines[name]["reason"] for name in expected} == expected
    assert not any(line["retryable"] for line in lines.values())
    assert report["counts"]["inputs"] == {"total": 8, "kept": 4, "rejected": 4}
    assert report["reasons"]["inputs"] == {reason: 1 for reason in expected.values()}
    assert validate_release(root) == []


def test_the_output_folder_inside_an_input_folder_is_not_an_input(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_video_file(folder / "a.mp4", make_clip(seconds=3.0, seed=1))
    root = folder / "release"
    first = curate([str(folder)], root, FAST, log=quiet)
    assert [line["input"] for line in _lines(root)] == [str(folder / "a.mp4")]
    # the rerun sees the same plan (not the release's own files), so it is a no-op rather than a refusal
    assert curate([str(folder)], root, FAST, log=quiet) == first


# --------------------------------------------------------------------------- files that are not files


def test_a_fifo_named_directly_or_in_a_manifest_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "p.mp4"
    fifo_manifest = tmp_path / "m.csv"
    with watched_fifo(fifo) as opened, watched_fifo(fifo_manifest) as manifest_opened:
        listing = tmp_path / "list.csv"
        listing.write_text("path\np.mp4\n")
        items, problems = read_inputs([str(fifo), str(listing), str(fifo_manifest), "/dev/null"])
    assert not opened.is_set() and not manifest_opened.is_set()
    assert items == []
    assert [(p.input, p.reason) for p in problems] == [
        (str(fifo), "not_a_regular_file"),
        (str(fifo), "not_a_regular_file"),
        (str(fifo_manifest), "not_a_regular_file"),
        ("/dev/null", "not_a_regular_file"),
    ]
    assert f"listed in {listing}:2" in problems[1].detail
    assert "character device" in problems[3].detail


def test_an_empty_file_is_empty_file_and_not_retryable(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    good = write_video_file(tmp_path / "good.mp4", make_clip(seconds=3.0, seed=2))
    root = tmp_path / "out"
    curate([str(tmp_path / "empty.mp4"), str(good)], root, FAST, log=quiet)
    line = _by_name(root)["empty.mp4"]
    assert (line["reason"], line["retryable"], line["outcome"]) == ("empty_file", False, "rejected")


# --------------------------------------------------------------------------- URLs


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MediaServer]:
    folder = tmp_path / "www"
    folder.mkdir()
    for seed, name in enumerate(("ok.mp4", "busy.mp4", "down.mp4", "gone.mp4", "removed.mp4")):
        write_video_file(folder / name, make_clip(seconds=3.0, seed=seed + 20))
    (folder / "empty.mp4").write_bytes(b"")
    running = MediaServer(folder)
    yield running
    running.stop()


def test_url_inputs_are_fetched_once_retried_on_server_errors_and_a_404_is_not_found(
    tmp_path: Path, server: MediaServer
) -> None:
    server.plans["/busy.mp4"] = [(503, 0), (429, 0), (500, 0)]  # three failures (Retry-After: 0), then the file
    server.always["/down.mp4"] = (502, 0)
    server.always["/gone.mp4"] = 404
    server.always["/removed.mp4"] = 410
    names = ("ok.mp4", "busy.mp4", "down.mp4", "gone.mp4", "removed.mp4", "empty.mp4")
    root = tmp_path / "out"
    report = curate([f"{server.url}/{name}" for name in names], root, FAST, log=quiet)

    lines = _by_name(root)
    assert lines["ok.mp4"]["outcome"] == "kept"
    assert server.counts["/ok.mp4"] == 1  # planning makes no request; decoding fetches once
    assert server.heads["/ok.mp4"] == 1  # fsspec asks the size first
    assert lines["busy.mp4"]["outcome"] == "kept" and lines["busy.mp4"]["retryable"] is False
    assert server.requests("/busy.mp4") == 3 + 2  # three failures retried inside the fetch, then HEAD and GET
    down = lines["down.mp4"]
    assert (down["reason"], down["retryable"]) == ("fetch_failed", True)
    assert "HTTP 502" in down["detail"]
    assert server.heads["/down.mp4"] == fetch.ATTEMPTS  # fsspec then tries a GET: retried as often
    assert server.counts["/down.mp4"] == fetch.ATTEMPTS
    for name, status in (("gone.mp4", 404), ("removed.mp4", 410)):
        assert (lines[name]["reason"], lines[name]["retryable"]) == ("not_found", False)
        assert lines[name]["detail"] == f"HTTP {status}"
        assert server.requests(f"/{name}") == 2  # never retried: one HEAD, one GET
    assert (lines["empty.mp4"]["reason"], lines["empty.mp4"]["retryable"]) == ("empty_file", False)
    assert report["retryable"] == {"inputs": 1, "clips": 0}
    assert report["reasons"]["inputs"] == {"fetch_failed": 1, "not_found": 2, "empty_file": 1}

    server.always.pop("/down.mp4")  # the server is back: --retry-failed redoes just that input
    report = curate([f"{server.url}/{name}" for name in names], root, FAST, retry_failed=True, log=quiet)
    assert _by_name(root)["down.mp4"]["outcome"] == "kept"
    assert report["retryable"] == {"inputs": 0, "clips": 0}


def test_credentials_in_an_input_url_are_never_written(tmp_path: Path, server: MediaServer) -> None:
    secret = "input-SECRET-0123456789"
    host = server.url.removeprefix("http://")
    urls = [f"http://reader:{secret}@{host}/ok.mp4", f"http://reader:{secret}@{host}/gone.mp4"]
    server.always["/gone.mp4"] = 404
    root = tmp_path / "out"
    curate(urls, root, FAST, log=quiet)

    lines = _by_name(root)
    assert lines["ok.mp4"]["outcome"] == "kept" and lines["gone.mp4"]["reason"] == "not_found"
    assert lines["ok.mp4"]["input"] == f"http://***@{host}/ok.mp4"
    written = [path for path in root.rglob("*") if path.is_file()]
    assert any(path.suffix == ".tar" for path in written)
    leaking = [str(path.relative_to(root)) for path in written if secret.encode() in path.read_bytes()]
    assert not leaking, f"the input URL's password is in {leaking}"


# --------------------------------------------------------------------------- manifests


def test_bad_manifest_rows_name_the_row_and_the_column(tmp_path: Path) -> None:
    video = write_video_file(tmp_path / "a.mp4", make_clip(seconds=3.0, seed=3))
    csv = tmp_path / "m.csv"
    csv.write_text(
        "path,start,end\n"
        f"{video},inf,\n"  # 2
        f"{video},nan,\n"  # 3
        f"{video},-1,\n"  # 4
        f"{video},soon,\n"  # 5
        f"{video},2,1\n"  # 6
        f"{video},1,1\n"  # 7
        f"{video},,-inf\n"  # 8
        f"{video},0,2.5\n"  # 9: good
    )
    jsonl = tmp_path / "m.jsonl"
    rows = [{"path": str(video), "start": float("nan")}, {"path": str(video), "end": float("inf")}, {}]
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n")  # Python writes NaN and Infinity
    root = tmp_path / "out"
    curate([str(csv), str(jsonl)], root, FAST, log=quiet)

    text = (root / layout.INPUTS).read_text()
    lines = {line["input"]: line for line in map(strict_loads, text.splitlines())}
    expected = {
        f"{csv}:2": "column start",
        f"{csv}:3": "column start",
        f"{csv}:4": "column start",
        f"{csv}:5": "column start",
        f"{csv}:6": "column end",
        f"{csv}:7": "column end",
        f"{csv}:8": "column end",
        f"{jsonl}:1": "column start",
        f"{jsonl}:2": "column end",
        f"{jsonl}:3": "no path, url, videoID or youtube_id",
    }
    for where, column in expected.items():
        assert lines[where]["reason"] == "bad_manifest_row", lines[where]
        assert column in lines[where]["detail"], lines[where]
    assert lines[str(video)]["outcome"] == "kept" and lines[str(video)]["end"] == 2.5
    assert "Infinity" not in text and "NaN" not in text


# --------------------------------------------------------------------------- what is written


def test_every_json_written_parses_with_a_strict_parser(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_video_file(folder / "a.mp4", make_clip(seconds=5.0, seed=4))
    (folder / "b.txt").write_text("no video")
    root = tmp_path / "out"
    curate([str(folder)], root, FAST, log=quiet)

    _lines(root)
    strict_loads((root / layout.REPORT).read_text())
    strict_loads((root / layout.CROISSANT).read_text())
    members = 0
    for shard in (root / layout.DATA_DIR).glob("*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    strict_loads(tar.extractfile(member).read().decode("utf-8"))
                    members += 1
    assert members >= 1


def test_a_non_finite_value_is_refused_naming_where_it_sits() -> None:
    with pytest.raises(ValueError, match=r"nan at \$\.clips\[1\]\.start"):
        strict_json.dumps({"clips": [{"start": 0.0}, {"start": float("nan")}]})
    assert strict_json.dumps({"a": [1.5, None]}) == '{"a": [1.5, null]}'
    with pytest.raises(ValueError, match="max_offset must be a finite number"):
        CurationConfig(max_offset=float("inf"))


def test_paths_are_recorded_as_written_with_no_absolute_path_of_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    write_video_file("in/good.mp4", make_clip(seconds=3.0, seed=5))
    Path("in/broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000)
    Path("in/empty.mov").write_bytes(b"")
    Path("in/notes.txt").write_text("notes")
    Path("other").mkdir()
    Path("other/bad.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"\x21" * 4000)
    Path("m.csv").write_text("path,start\nin/good.mp4,1\nmissing.mp4,\nin,\n")
    report = curate(["in", "m.csv", "nope.mkv", "absent.csv", "in/../other/bad.mov"], "out", FAST, log=quiet)

    written = (tmp_path / "out" / layout.INPUTS).read_text() + (tmp_path / "out" / layout.REPORT).read_text()
    for absolute in {str(tmp_path), str(tmp_path.resolve()), os.getcwd()}:
        assert absolute not in written
    inputs = {line["input"] for line in _lines(tmp_path / "out")}
    assert {"in/good.mp4", "in/broken.mp4", "in/empty.mov", "in/notes.txt", "nope.mkv", "absent.csv"} <= inputs
    assert "in/../other/bad.mov" in inputs
    assert report["counts"]["inputs"]["kept"] == 2  # in/good.mp4, and its window from m.csv


def test_a_run_of_inputs_that_all_fail_names_their_reasons(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("text")
    with pytest.raises(CurationError, match="skipped_not_media"):
        curate([str(tmp_path / "in")], tmp_path / "out", FAST, log=quiet)


def test_the_same_command_in_another_folder_gives_the_same_release(tmp_path: Path, monkeypatch) -> None:
    """Inputs count as written (a manifest row by its row, not by where the manifest lies), so the same command in
    another folder, as on another machine, gives the same bytes, report.json included."""
    releases = []
    for place in ("first", "second/deeper"):
        here = tmp_path / place
        (here / "videos").mkdir(parents=True)
        write_video_file(here / "videos" / "a.mp4", make_clip(seconds=4.0, seed=41))
        (here / "list.csv").write_text("path,video_id\nvideos/a.mp4,clip_a\n", encoding="utf-8")
        monkeypatch.chdir(here)
        curate(["videos", str(here / "list.csv")], Path("out"), FAST, log=quiet)  # a manifest named by its full path
        files = [p for p in (here / "out").rglob("*") if p.is_file()]
        releases.append({p.relative_to(here / "out").as_posix(): p.read_bytes() for p in files})
    first, second = releases
    assert "report.json" in first and any(name.endswith(".tar") for name in first)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
