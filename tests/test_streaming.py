"""`acav1m_hf.streaming`: decoding, splitting by node and worker, shuffling, collation, never unpickling, refusing
hostile shards, skipping bad samples, equal epochs per rank, and resuming mid-epoch."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import math
import pathlib
import pickle
import re
import tarfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from acav1m_hf.release import list_shards
from acav1m_hf.schema import MAX_MEMBER_BYTES, MEMBER_EXTENSIONS
from acav1m_hf.streaming import collate, decode_audio, decode_video, resolve_shards, stream

WORKER_START = "spawn"
"""How DataLoader workers start in these tests. Forking a process that has threads (fsspec's IO loop, tqdm's
monitor, started by earlier tests) can leave a worker blocked forever on a lock another thread held at the fork:
it hung CI once, in `test_skips_in_dataloader_workers_add_up_in_the_main_process`. Spawned workers start clean."""


def _start(num_workers: int) -> dict[str, str]:
    return {"multiprocessing_context": WORKER_START} if num_workers else {}


def read_raw(shard: Path) -> list[dict[str, bytes]]:
    """The samples of a shard as raw member bytes, read with tarfile (independently of the code under test)."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(shard) as tar:
        for info in tar:
            key, ext = info.name.split(".", 1)
            samples.setdefault(key, {"__key__": key})[ext] = tar.extractfile(info).read()
    return list(samples.values())


def write_shards(samples: list[dict[str, bytes]], folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"train-{i:05d}.tar"
        with wds.TarWriter(str(path), encoder=False) as writer:
            for sample in samples[i::n]:
                writer.write(sample)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def all_samples(release: Path) -> list[dict[str, bytes]]:
    return [s for shards in list_shards(release).values() for shard in shards for s in read_raw(shard)]


@pytest.fixture(scope="module")
def four_shards(all_samples: list[dict[str, bytes]], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every curated clip of the session release, re-packed into four shards (for node/worker splitting)."""
    return write_shards(all_samples, tmp_path_factory.mktemp("four") / "data", 4)


def keys_of(dataset) -> list[str]:
    return [s["__key__"] for s in dataset]


# --------------------------------------------------------------------------- decoding


def test_members_are_named_as_validate_names_them(all_samples, tmp_path: Path):
    # one rule for a member's name (schema.split_member_name, as `acav1m validate` reads it): `s.MP4` is not `mp4`
    shard = tmp_path / "upper.tar"
    key = all_samples[0]["__key__"]
    shard.write_bytes(finished(tar_of([(f"{key}.{ext.upper()}", all_samples[0][ext]) for ext in ("mp4", "json")])))
    with pytest.raises(ValueError, match=r"\.MP4: not an ACAV-1M member"):
        list(stream(str(shard), decode=False, unknown="error"))


def test_decoded_release_sample_has_the_promised_types_and_shapes(release: Path):
    samples = list(stream(release, split="train", fps=4.0, size=32))
    raw = {s["__key__"]: s for shard in list_shards(release)["train"] for s in read_raw(shard)}
    assert sorted(s["__key__"] for s in samples) == sorted(raw)
    for s in samples:
        meta = s["json"]
        assert meta == json.loads(raw[s["__key__"]]["json"])
        frames = s["mp4"]
        assert frames.dtype == torch.uint8 and frames.shape[1:] == (3, 32, 32)
        assert frames.shape[0] == math.ceil(meta["clip"]["duration"] * 4.0 - 1e-6)
        audio = s["flac"]
        assert audio.dtype == torch.float32 and audio.ndim == 1
        assert len(audio) == sf.info(io.BytesIO(raw[s["__key__"]]["flac"])).frames
        assert s["jpg"].dtype == np.uint8 and s["jpg"].shape == (meta["clip"]["height"], meta["clip"]["width"], 3)
        assert (s["mask.png"] is not None) == meta["labels"]["mask"]["present"]
        if s["mask.png"] is not None:
            assert s["mask.png"].shape == (meta["clip"]["height"], meta["clip"]["width"])
        assert s["txt"] == meta["caption"]["text"]
        assert set(s) == {"__key__", "__url__", *MEMBER_EXTENSIONS}


def _gray_video(tmp: Path, n: int = 20, rate: int = 10, step: int = 12) -> bytes:
    """An mp4 whose frame i is uniformly gray at level i * step: frame identity is readable after decoding."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream_ = container.add_stream("libx264", rate=rate)
        stream_.width, stream_.height, stream_.pix_fmt = 64, 48, "yuv420p"
        stream_.time_base = Fraction(1, rate)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * step, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream_.encode(frame):
                container.mux(packet)
        for packet in stream_.encode():
            container.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def gray(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _gray_video(tmp_path_factory.mktemp("gray"))


@pytest.mark.parametrize("fps", [10.0, 5.0, 4.0, 3.0])
def test_video_frames_are_the_ones_shown_at_k_over_fps(gray: bytes, fps: float):
    frames = decode_video(gray, fps=fps, size=None)
    expected = [math.floor(k / fps * 10 + 1e-6) for k in range(math.ceil(2.0 * fps - 1e-6))]
    got = [round(float(f.float().mean()) / 12) for f in frames]
    assert got == expected
    assert frames.shape[1:] == (3, 48, 64)


def test_video_size_and_max_frames(gray: bytes):
    assert decode_video(gray, fps=10, size=(24, 40)).shape == (20, 3, 24, 40)
    assert decode_video(gray, fps=10, size=16).shape == (20, 3, 16, 16)  # shorter side 16, center square
    assert decode_video(gray, fps=10, size=16, max_frames=3).shape[0] == 3


def test_audio_seconds_crops_and_pads():
    buf = io.BytesIO()
    sf.write(buf, np.full(16000, 0.25, np.float32), 16000, format="FLAC")
    data = buf.getvalue()
    assert decode_audio(data).shape == (16000,)
    assert decode_audio(data, seconds=0.5).shape == (8000,)
    padded = decode_audio(data, seconds=1.5)
    assert padded.shape == (24000,) and float(padded[16000:].abs().max()) == 0.0
    wrong = io.BytesIO()
    sf.write(wrong, np.zeros(800, np.float32), 8000, format="FLAC")
    with pytest.raises(ValueError, match="8000 Hz"):
        decode_audio(wrong.getvalue())


def test_raw_mode_yields_the_tar_bytes(four_shards: list[str], all_samples: list[dict[str, bytes]]):
    by_key = {s["__key__"]: s for s in all_samples}
    for s in stream(four_shards, decode=False):
        original = by_key[s["__key__"]]
        for ext in MEMBER_EXTENSIONS:
            assert s[ext] == original.get(ext)
            assert s[ext] is None or type(s[ext]) is bytes


# --------------------------------------------------------------------------- sources, splitting, shuffling


def test_sources_dir_list_and_brace_pattern(release: Path, four_shards: list[str]):
    folder = Path(four_shards[0]).parent
    assert resolve_shards(release, "validation") == [str(p) for p in list_shards(release)["validation"]]
    everything = sorted(keys_of(stream(four_shards, decode=False)))
    assert sorted(keys_of(stream(f"{folder}/train-{{00000..00003}}.tar", decode=False))) == everything
    assert sorted(keys_of(stream(folder.parent, decode=False))) == everything  # a folder with data/
    with pytest.raises(ValueError, match=r"no 'nope' shards .*splits with shards: train, validation, test"):
        stream(release, split="nope")
    with pytest.raises(ValueError, match="no shards given"):
        stream([])


def test_dataloader_with_two_workers_reads_every_sample_once(four_shards: list[str], all_samples):
    loader = DataLoader(
        stream(four_shards, fps=2.0, size=32),
        batch_size=2,
        num_workers=2,
        multiprocessing_context=WORKER_START,
        collate_fn=collate,
    )
    seen = [key for batch in loader for key in batch["__key__"]]
    assert sorted(seen) == sorted(s["__key__"] for s in all_samples)
    assert len(seen) == len(set(seen))


def test_split_by_node_gives_disjoint_complete_parts(four_shards: list[str], all_samples, monkeypatch):
    parts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = DataLoader(
            stream(four_shards, decode=False), batch_size=None, num_workers=2, multiprocessing_context=WORKER_START
        )
        parts.append([s["__key__"] for s in loader])
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(s["__key__"] for s in all_samples)


def test_more_workers_than_shards_finish_without_error(four_shards: list[str]):
    monkey = DataLoader(
        stream(four_shards[:1], decode=False), batch_size=None, num_workers=2, multiprocessing_context=WORKER_START
    )
    assert len(list(monkey)) == len(read_raw(Path(four_shards[0])))


def test_shuffle_is_seeded_complete_and_changes_with_epoch(four_shards: list[str]):
    plain = keys_of(stream(four_shards, decode=False))
    first = keys_of(stream(four_shards, decode=False, shuffle=4, seed=1))
    again = keys_of(stream(four_shards, decode=False, shuffle=4, seed=1))
    assert first == again and sorted(first) == sorted(plain) and first != plain
    dataset = stream(four_shards, decode=False, shuffle=4, seed=1)
    dataset.set_epoch(1)
    assert sorted(keys_of(dataset)) == sorted(plain) and keys_of(dataset) != first


# --------------------------------------------------------------------------- safety


class _Touch:
    """Unpickling this creates ``path``: a stand-in for code execution by a hostile shard."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_pickle_members_are_never_unpickled(all_samples, tmp_path: Path):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(_Touch(sentinel))
    hostile = dict(all_samples[0])
    hostile.update({"pyd": payload, "pickle": payload, "pkl": payload})
    shard = write_shards([hostile], tmp_path / "data", 1)

    for decode in (True, False):
        samples = list(stream(shard, decode=decode, fps=1.0, size=16))
        assert len(samples) == 1 and not {"pyd", "pickle", "pkl"} & set(samples[0])
    assert not sentinel.exists()
    with pytest.raises(ValueError, match=r"\.(pyd|pickle|pkl): not an ACAV-1M member"):
        list(stream(shard, decode=False, unknown="error"))
    assert not sentinel.exists()

    # the payload is armed: webdataset's default decoder would have run it
    list(wds.WebDataset(shard, shardshuffle=False).decode())
    assert sentinel.exists()


# --------------------------------------------------------------------------- collate


def test_collate_pads_audio_and_frames_and_keeps_metadata_lists():
    def sample(key: str, n_audio: int, n_frames: int, mask: bool) -> dict:
        return {
            "__key__": key,
            "__url__": "u",
            "mp4": torch.full((n_frames, 3, 4, 4), 7, dtype=torch.uint8),
            "flac": torch.ones(n_audio),
            "json": {"key": key},
            "jpg": np.zeros((4, 4, 3), np.uint8),
            "txt": None,
            "mask.png": np.zeros((4, 4), np.uint8) if mask else None,
            "npy": None,
        }

    batch = collate([sample("a", 5, 2, True), sample("b", 3, 4, False)])
    assert batch["flac"].shape == (2, 5) and batch["flac_lengths"].tolist() == [5, 3]
    assert batch["flac"][1, 3:].abs().sum() == 0
    assert batch["mp4"].shape == (2, 4, 3, 4, 4) and batch["mp4"].dtype == torch.uint8
    assert batch["mp4_lengths"].tolist() == [2, 4] and int(batch["mp4"][0, 2:].sum()) == 0
    assert batch["jpg"].shape == (2, 4, 4, 3)
    assert batch["json"] == [{"key": "a"}, {"key": "b"}] and batch["txt"] == [None, None]
    assert batch["mask.png"][1] is None and batch["__key__"] == ["a", "b"]
    odd = sample("c", 3, 2, False)
    odd["mp4"] = torch.zeros((2, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match="mp4 shapes differ"):
        collate([sample("a", 5, 2, True), odd])


# --------------------------------------------------------------------------- hostile and damaged shards


def tar_of(members: list[tuple[str, bytes] | tarfile.TarInfo]) -> io.BytesIO:
    """An uncompressed tar of (name, data) and data-less members, without end-of-archive blocks (see `finished`)."""
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
    for member in members:
        if isinstance(member, tarfile.TarInfo):
            tar.addfile(member)
            continue
        info = tarfile.TarInfo(member[0])
        info.size = len(member[1])
        tar.addfile(info, io.BytesIO(member[1]))
    return buf


def members_of(sample: dict[str, bytes], key: str | None = None) -> list[tuple[str, bytes]]:
    return [(f"{key or sample['__key__']}.{ext}", data) for ext, data in sample.items() if ext != "__key__"]


def finished(buf: io.BytesIO) -> bytes:
    return buf.getvalue() + b"\0" * (2 * tarfile.BLOCKSIZE)


@pytest.mark.parametrize("name, compress", [("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)])
def test_a_compressed_shard_is_refused_naming_it(four_shards: list[str], tmp_path: Path, name: str, compress):
    path = tmp_path / "train-00000.tar"
    path.write_bytes(compress(Path(four_shards[0]).read_bytes()))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {name}-compressed"):
        list(stream([str(path)], decode=False))
    assert keys_of(stream(four_shards[:1], decode=False))  # the same shard uncompressed reads


def test_a_member_over_the_limit_is_refused_before_it_is_read(all_samples, tmp_path: Path):
    good = all_samples[0]
    buf = tar_of(members_of(good))
    huge = tarfile.TarInfo("huge.mp4")
    huge.size = 1 << 30
    buf.write(huge.tobuf(tarfile.GNU_FORMAT))  # and no data: reading the member would fail on a truncated tar
    path = tmp_path / "train-00000.tar"
    path.write_bytes(buf.getvalue())

    it = iter(stream([str(path)], decode=False))
    assert next(it)["__key__"] == good["__key__"]
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: sample 'huge': member mp4 is 1073741824 bytes"):
        next(it)
    assert MAX_MEMBER_BYTES < 1 << 30


def test_the_member_limit_is_configurable(four_shards: list[str]):
    sizes = {s["__key__"]: max(len(v) for k, v in s.items() if k != "__key__") for s in read_raw(Path(four_shards[0]))}
    limit = sorted(sizes.values())[len(sizes) // 2]  # the largest member of about half the samples is over it
    with pytest.raises(ValueError, match=rf"member \S+ is \d+ bytes, over the limit of {limit}"):
        list(stream(four_shards[:1], decode=False, max_member_bytes=limit))
    data = stream(four_shards[:1], decode=False, max_member_bytes=limit, on_error="skip")
    assert keys_of(data) == [k for k, n in sizes.items() if n <= limit]
    assert data.skipped == sum(n > limit for n in sizes.values()) > 0


def _special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd"
    return info


@pytest.mark.parametrize(
    "member, reason",
    [
        (_special("s.mp4", tarfile.SYMTYPE), "is a symlink"),
        (_special("s.mp4", tarfile.LNKTYPE), "is a hardlink"),
        (_special("s.mp4", tarfile.FIFOTYPE), "is a FIFO"),
        (_special("s.mp4", tarfile.CHRTYPE), "is a character device"),
        (_special("s", tarfile.DIRTYPE), "is a directory"),
        ("../../x/s.txt", "has a '..' part"),
        ("/tmp/s.mp4", "is an absolute path"),
        ("a/s.mp4", "has a folder part"),
        ("s p.mp4", "has a key 's p' that does not match"),
    ],
)
def test_links_devices_and_keys_outside_the_pattern_are_refused(all_samples, tmp_path: Path, member, reason: str):
    if isinstance(member, str):
        member, name = (member, b"abc"), member
    else:
        name = member.name
    buf = tar_of([*members_of(all_samples[0]), member])
    path = tmp_path / "train-00000.tar"
    path.write_bytes(finished(buf))
    for on_error in ("raise", "skip"):  # a hostile shard is refused either way
        with pytest.raises(
            ValueError, match=rf"^{re.escape(str(path))}: member '{re.escape(name)}'.* {re.escape(reason)}"
        ):
            list(stream([str(path)], decode=False, on_error=on_error))


def test_a_whole_sample_under_a_traversal_key_is_refused(all_samples, tmp_path: Path):
    path = tmp_path / "train-00000.tar"
    path.write_bytes(finished(tar_of(members_of(all_samples[0], key="../evil"))))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: member '\.\./evil\.\S+' has a '\.\.' part"):
        list(stream([str(path)], decode=False))


def test_a_sample_missing_a_required_member_raises_or_is_skipped(all_samples, tmp_path: Path, caplog):
    a, b, c = (dict(s) for s in all_samples[:3])
    del b["flac"], b["jpg"]
    shard = write_shards([a, b, c], tmp_path / "data", 1)
    expected = rf"{re.escape(shard[0])}: sample '{b['__key__']}': required members flac, jpg missing"
    with pytest.raises(ValueError, match=expected):
        list(stream(shard, decode=False))
    data = stream(shard, decode=False, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="acav1m_hf.streaming"):
        assert keys_of(data) == [a["__key__"], c["__key__"]]
    assert data.skipped == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped a sample: {shard[0]}: sample '{b['__key__']}': required members flac, jpg missing"
    ]


# --------------------------------------------------------------------------- corrupt samples


def test_a_corrupt_mp4_mid_shard_raises_naming_it_or_is_skipped_and_counted(all_samples, tmp_path: Path, caplog):
    samples = [dict(s) for s in all_samples[:3]]
    samples[1]["mp4"] = b"not an mp4 " * 100
    bad = samples[1]["__key__"]
    shard = write_shards(samples, tmp_path / "data", 1)
    small = {"fps": 1.0, "size": 16, "max_frames": 1}

    it = iter(stream(shard, **small))
    assert next(it)["__key__"] == samples[0]["__key__"]
    with pytest.raises(ValueError, match=rf"^{bad}\.mp4 in {re.escape(shard[0])}: cannot decode"):
        next(it)

    data = stream(shard, on_error="skip", **small)
    with caplog.at_level(logging.WARNING, logger="acav1m_hf.streaming"):
        got = [s for s in data]
    assert [s["__key__"] for s in got] == [samples[0]["__key__"], samples[2]["__key__"]]
    assert all(s["mp4"].shape[1:] == (3, 16, 16) for s in got)
    assert data.skipped == 1
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and f"{bad}.mp4 in {shard[0]}: cannot decode" in record.getMessage()


def test_skips_in_dataloader_workers_add_up_in_the_main_process(all_samples, tmp_path: Path):
    samples = [dict(s) for s in all_samples[:4]]
    for s in samples[1::2]:
        s["mp4"] = b"garbage"
    shards = write_shards(samples, tmp_path / "data", 2)  # one corrupt sample in each shard, one shard per worker
    data = stream(shards, on_error="skip", fps=1.0, size=16, max_frames=1)
    loader = DataLoader(data, batch_size=None, num_workers=2, multiprocessing_context=WORKER_START)
    assert sorted(s["__key__"] for s in loader) == sorted(s["__key__"] for s in samples[0::2])
    assert data.skipped == 2


def test_on_error_must_be_raise_or_skip(four_shards: list[str]):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        stream(four_shards, on_error="ignore")


# --------------------------------------------------------------------------- equal epochs per rank


def indexed_release(samples: list[dict[str, bytes]], root: Path, n: int) -> Path:
    """``n`` train shards of ``samples`` under ``root/data`` and a Parquet index listing each sample's shard."""
    shards = write_shards(samples, root / "data", n)
    rows = [(Path(p).relative_to(root).as_posix(), s["__key__"]) for p in shards for s in read_raw(Path(p))]
    (root / "metadata").mkdir()
    pq.write_table(
        pa.table({"shard": [r[0] for r in rows], "key": [r[1] for r in rows]}), root / "metadata" / "train.parquet"
    )
    return root


def per_rank(monkeypatch, world: int, make) -> list[list[str]]:
    out = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        out.append(make())
    return out


def test_equal_per_rank_gives_every_rank_the_same_number_of_samples(all_samples, tmp_path: Path, monkeypatch):
    assert len(all_samples) >= 3
    root = indexed_release(all_samples, tmp_path, 3)
    plain = per_rank(monkeypatch, 2, lambda: keys_of(stream(root, decode=False)))
    equal = per_rank(monkeypatch, 2, lambda: keys_of(stream(root, decode=False, equal_per_rank=True)))
    assert len(plain[0]) > len(plain[1])  # two shards against one: a DDP job would hang at rank 1's last step
    assert len(equal[0]) == len(equal[1]) == len(plain[0])
    assert equal[0] == plain[0]
    assert equal[1] == (plain[1] * 2)[: len(plain[0])]  # the shorter rank wraps around: nothing is left out

    shuffled = per_rank(monkeypatch, 2, lambda: keys_of(stream(root, decode=False, equal_per_rank=True, shuffle=3)))
    assert len(shuffled[0]) == len(shuffled[1]) and sorted(set(shuffled[1])) == sorted(plain[1])


def test_equal_per_rank_with_dataloader_workers(all_samples, tmp_path: Path, monkeypatch):
    root = indexed_release(all_samples, tmp_path, 5)  # ranks get 3 and 2 shards, dealt to 2 workers each

    def count() -> int:
        return sum(
            1
            for _ in DataLoader(
                stream(root, decode=False, equal_per_rank=True),
                batch_size=None,
                num_workers=2,
                multiprocessing_context=WORKER_START,
            )
        )

    plain = per_rank(monkeypatch, 2, lambda: len(keys_of(stream(root, decode=False))))
    counts = per_rank(monkeypatch, 2, count)
    assert plain[0] != plain[1] and counts[0] == counts[1] >= max(plain)


def test_equal_per_rank_needs_the_index_and_a_shard_per_worker(all_samples, tmp_path: Path, monkeypatch):
    root = indexed_release(all_samples, tmp_path, 3)
    shards = [str(p) for p in list_shards(root)["train"]]
    with pytest.raises(ValueError, match="equal_per_rank needs a release folder"):
        stream(shards, equal_per_rank=True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = DataLoader(
        stream(root, decode=False, equal_per_rank=True),
        batch_size=None,
        num_workers=2,
        multiprocessing_context=WORKER_START,
    )
    with pytest.raises(
        ValueError, match=r"rank 1, DataLoader worker 1 has no samples \(3 shards for 2 ranks x 2 workers\)"
    ):
        list(loader)
    (root / "metadata" / "train.parquet").unlink()
    with pytest.raises(ValueError, match=r"metadata/train\.parquet not found"):
        stream(root, equal_per_rank=True)


# --------------------------------------------------------------------------- resuming mid-epoch


@pytest.mark.parametrize("shuffle", [0, 4])
def test_a_restored_stream_yields_exactly_the_rest_of_the_epoch(four_shards: list[str], shuffle: int):
    def make():
        data = stream(four_shards, decode=False, shuffle=shuffle, seed=7)
        data.set_epoch(3)
        return data

    full = keys_of(make())
    assert full != keys_of(stream(four_shards, decode=False, shuffle=shuffle, seed=7)) or not shuffle
    for k in (0, 1, len(full) // 2, len(full) - 1, len(full)):
        first = make()
        it = iter(first)
        head = [next(it)["__key__"] for _ in range(k)]
        state = first.state_dict()
        assert json.loads(json.dumps(state)) == state  # plain ints: fits any checkpoint
        second = make()
        second.load_state_dict(state)
        assert head + keys_of(second) == full, k
        assert second.state_dict() == {"epoch": 4, "consumed": 0, "yielded": 0}  # the epoch ended


def test_resume_does_not_decode_what_was_already_consumed(all_samples, tmp_path: Path):
    samples = [dict(s) for s in all_samples[:4]]
    samples[1]["mp4"] = b"garbage"
    shard = write_shards(samples, tmp_path / "data", 1)
    small = {"fps": 1.0, "size": 16, "max_frames": 1, "on_error": "skip"}
    first = stream(shard, **small)
    it = iter(first)
    assert [next(it)["__key__"] for _ in range(2)] == [samples[0]["__key__"], samples[2]["__key__"]]
    assert first.skipped == 1
    second = stream(shard, **small)
    second.load_state_dict(first.state_dict())
    assert keys_of(second) == [samples[3]["__key__"]] and second.skipped == 0


def test_resume_across_the_wrap_around_of_equal_per_rank(all_samples, tmp_path: Path, monkeypatch):
    root = indexed_release(all_samples, tmp_path, 3)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    full = keys_of(stream(root, decode=False, equal_per_rank=True))
    for k in range(len(full) + 1):
        first = stream(root, decode=False, equal_per_rank=True)
        it = iter(first)
        head = [next(it)["__key__"] for _ in range(k)]
        second = stream(root, decode=False, equal_per_rank=True)
        second.load_state_dict(first.state_dict())
        assert head + keys_of(second) == full, k


def test_set_epoch_refuses_to_drop_a_restored_mid_epoch_position(four_shards: list[str]):
    data = stream(four_shards, decode=False)
    data.load_state_dict({"epoch": 2, "consumed": 3, "yielded": 3})
    with pytest.raises(ValueError, match=r"restored 3 samples into epoch 2; call set_epoch\(2\) to resume it"):
        data.set_epoch(0)
    data.set_epoch(2)
    assert data.state_dict() == {"epoch": 2, "consumed": 3, "yielded": 3}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resumes_mid_epoch_in_order(four_shards: list[str], num_workers: int):
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader(state: dict | None = None) -> StatefulDataLoader:
        data = stream(four_shards, decode=False, shuffle=3, seed=5)
        data.set_epoch(1)
        dl = StatefulDataLoader(data, batch_size=2, num_workers=num_workers, collate_fn=collate, **_start(num_workers))
        if state is not None:
            dl.load_state_dict(state)
        return dl

    full = [key for batch in loader() for key in batch["__key__"]]
    assert sorted(full) == sorted(keys_of(stream(four_shards, decode=False)))
    dl = loader()
    it = iter(dl)
    head = [key for _ in range(3) for key in next(it)["__key__"]]
    state = dl.state_dict()
    del it
    rest = [key for batch in loader(state) for key in batch["__key__"]]
    assert head + rest == full


def test_stateful_dataloader_workers_resume_from_the_streams_state_not_by_replaying(all_samples, tmp_path: Path):
    """Each worker's copy restores its own position: the samples it had consumed are not decoded again.

    A corrupt sample first in each worker's first shard is skipped (and counted) by the first run; the restored run
    never sees it. torchdata's fallback for a dataset without ``state_dict`` replays the batches, and would skip it
    again.
    """
    from torchdata.stateful_dataloader import StatefulDataLoader

    samples = [dict(s) for s in all_samples]
    shards = write_shards(samples, tmp_path / "data", 4)
    for path in shards[:2]:  # workers 0 and 1 read shards 0, 2 and 1, 3
        raw = read_raw(Path(path))
        raw[0]["mp4"] = b"garbage"
        write_shards(raw, tmp_path / "one", 1)
        Path(tmp_path / "one" / "train-00000.tar").replace(path)

    def loader(state: dict | None = None) -> StatefulDataLoader:
        data = stream(shards, on_error="skip", fps=1.0, size=16, max_frames=1)
        dl = StatefulDataLoader(
            data, batch_size=2, num_workers=2, multiprocessing_context=WORKER_START, collate_fn=collate
        )
        if state is not None:
            dl.load_state_dict(state)
        return dl

    whole = loader()
    full = [key for batch in whole for key in batch["__key__"]]
    assert whole.dataset.skipped == 2 and len(full) == len(samples) - 2
    dl = loader()
    it = iter(dl)
    head = [key for _ in range(2) for key in next(it)["__key__"]]  # one batch from each worker
    state = dl.state_dict()
    del it
    resumed = loader(state)
    assert head + [key for batch in resumed for key in batch["__key__"]] == full
    assert resumed.dataset.skipped == 0


def test_webdataset_stages_chain_on_the_stream(four_shards: list[str]):
    keys = keys_of(stream(four_shards, decode=False))
    mapped = stream(four_shards, decode=False).map(lambda s: {**s, "seen": True})
    assert [s["__key__"] for s in mapped if s["seen"]] == keys
    batches = list(stream(four_shards, decode=False).batched(2, collation_fn=None))
    assert [s["__key__"] for batch in batches for s in batch] == keys and len(batches[0]) == 2
    with pytest.raises(NotImplementedError, match="equal_per_rank"):
        stream(four_shards).with_epoch(10)
