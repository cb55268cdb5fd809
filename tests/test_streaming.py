"""`acav1m_hf.streaming`: decoding, splitting by node and worker, shuffling, collation, and never unpickling."""

from __future__ import annotations

import io
import json
import math
import pathlib
import pickle
import tarfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from acav1m_hf.release import list_shards
from acav1m_hf.schema import MEMBER_EXTENSIONS
from acav1m_hf.streaming import collate, decode_audio, decode_video, member_extension, resolve_shards, stream


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


def test_member_extension_matches_webdataset_grouping():
    assert member_extension("a/s001.mask.png") == "mask.png"
    assert member_extension("s001.MP4") == "mp4"
    assert member_extension("s001") is None


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
    loader = DataLoader(stream(four_shards, fps=2.0, size=32), batch_size=2, num_workers=2, collate_fn=collate)
    seen = [key for batch in loader for key in batch["__key__"]]
    assert sorted(seen) == sorted(s["__key__"] for s in all_samples)
    assert len(seen) == len(set(seen))


def test_split_by_node_gives_disjoint_complete_parts(four_shards: list[str], all_samples, monkeypatch):
    parts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = DataLoader(stream(four_shards, decode=False), batch_size=None, num_workers=2)
        parts.append([s["__key__"] for s in loader])
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(s["__key__"] for s in all_samples)


def test_more_workers_than_shards_finish_without_error(four_shards: list[str]):
    monkey = DataLoader(stream(four_shards[:1], decode=False), batch_size=None, num_workers=2)
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
