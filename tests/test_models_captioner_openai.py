"""The server captioner against the fake OpenAI-compatible server (`tests.openai_server`), on real clips.

The server decodes the JPEG data URLs it is sent and answers with what it
saw, so the tests check the images that reach a VLM server (how many, their
size), the key's secrecy, retries, the cache, the circuit breaker, per-clip
failures in the captioning stage, the concurrency at the server, and the
``paper`` profile's setting that selects this captioner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA, needs

needs("openai", "PIL")

from curation.captioning import caption_batch  # noqa: E402
from curation.config import CurationConfig  # noqa: E402
from curation.decode import decode_clips  # noqa: E402
from curation.models.captioner_openai import OpenAICaptioner, jpeg_data_url  # noqa: E402
from curation.models.condenser import CircuitOpen, CondenserUnavailable  # noqa: E402
from curation.models.videollava import DEFAULT_PROMPT  # noqa: E402
from curation.profiles import Profile, build_profile  # noqa: E402
from curation.records import InputItem  # noqa: E402
from tests.openai_server import FakeServer  # noqa: E402

KEY = "sk-captioner-SECRET-0123456789"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    s.default = "describe"
    yield s
    s.close()


@pytest.fixture(scope="module")
def clips() -> list:
    """Real clips from four sources of different frame sizes, as the pipeline decodes them."""
    config = CurationConfig(clip_seconds=1.0)
    names = ("techslides_small.mp4", "imageio_realshort.mp4", "bbb_excerpt.mkv", "psychtoolbox_dualdiscs.mov")
    return [next(decode_clips(InputItem(str(SAMPLE_DATA / n), n), config)) for n in names]


def _captioner(server: FakeServer, tmp_path: Path | None = None, **kw: object) -> OpenAICaptioner:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("max_retries", 2)
    kw.setdefault("sleep", lambda s: None)
    return OpenAICaptioner("fake-vlm", server.url, KEY, cache_dir=tmp_path, **kw)


def test_frames_reach_the_server_as_jpeg_images(server, clips, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    captioner = _captioner(server, tmp_path, num_frames=4, max_concurrency=1)
    descriptions = captioner.describe(clips)
    sizes = [f"{c.frames.shape[2]}x{c.frames.shape[1]}" for c in clips]
    assert len(set(sizes)) >= 2
    assert descriptions == [["4 images of " + size + ".", f"Prompt: {DEFAULT_PROMPT}"] for size in sizes]
    body = server.bodies[0]
    assert body["model"] == "fake-vlm" and body["max_tokens"] == 96 and body["temperature"] == 0.0
    assert [part["type"] for part in body["messages"][0]["content"]] == ["image_url"] * 4 + ["text"]
    assert server.auth == [f"Bearer {KEY}"] * 4
    assert KEY not in caplog.text and KEY not in repr(captioner)
    first = body["messages"][0]["content"][0]["image_url"]["url"]
    assert first == jpeg_data_url(clips[0].frames[0])  # the first sampled frame, encoded the same way every time

    server.default = "500"  # a rerun is answered from the cache: the images are part of the key
    assert _captioner(server, tmp_path, num_frames=4).describe(clips) == descriptions
    assert server.requests == 4
    with pytest.raises(ValueError, match="uint8"):
        jpeg_data_url(clips[0].frames[0].astype("float32"))


def test_failures_stay_with_their_clip_retries_and_circuit(server, clips, caplog) -> None:
    """A 401 on the first clip fails that clip only; a 500 is retried; a down server opens the circuit."""
    caplog.set_level(logging.DEBUG)
    server.script = ["401", "500"]  # clip 0: not retried; clip 1: one retry, then answered
    captioner = _captioner(server, num_frames=2, max_concurrency=1)
    profile = Profile("paper", aligner=None, captioner=captioner)
    results = caption_batch(clips[:3], profile)
    assert results[0].text is None and results[0].failure.stage == "captioner"
    assert "HTTP 401" in results[0].reason and KEY not in results[0].reason
    assert [r.failure for r in results[1:]] == [None, None]
    assert results[1].text.startswith("2 images of") and results[1].origin == "fake-vlm"
    assert server.requests == 4

    server.default = "echo_key"  # down, and echoing the key in its errors
    down = _captioner(server, num_frames=2, max_concurrency=1, max_retries=0, circuit_failures=2)
    failed = down.describe(clips)
    assert [type(f) for f in failed] == [CondenserUnavailable, CondenserUnavailable, CircuitOpen, CircuitOpen]
    assert server.requests == 6  # two clips asked, then the circuit answered without a request
    assert "***" in str(failed[0]) and all(KEY not in str(f) for f in failed) and KEY not in caplog.text


def test_a_batch_is_asked_concurrently_up_to_the_limit(server, clips) -> None:
    """Four clips, a limit of 3: the server, holding each request until a fourth arrives, sees exactly 3 at once."""
    server.hold = 3
    captioner = _captioner(server, num_frames=1, max_concurrency=3)
    assert all(isinstance(d, list) for d in captioner.describe(clips))
    assert server.requests == 4 and server.peak == 3


def test_the_paper_profile_selects_it(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ACAV1M_CAPTIONER_API_KEY", KEY)
    url = server.url.replace("http://", "http://user:pass-SECRET-1234@")
    overrides = {
        "captioner": "served-vlm",
        "captioner_base_url": url,
        "captioner_concurrency": 5,
        "captioner_frames": 3,
        "condenser": "extractive",
        "transcriber": "none",
        "embedder_arch": "tiny",
        "embedder_checkpoint": "random",
        "condenser_cache_dir": "none",
    }
    profile = build_profile(CurationConfig(profile="paper"), overrides)
    captioner = profile.captioner
    assert isinstance(captioner, OpenAICaptioner) and profile.models()["captioner"] == "served-vlm"
    assert captioner.max_concurrency == 5 and captioner.num_frames == 3 and captioner.cache is None
    assert "pass-SECRET-1234" not in str(profile.settings) and "***@127.0.0.1" in profile.settings["captioner_base_url"]
