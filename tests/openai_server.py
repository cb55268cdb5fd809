"""A fake OpenAI-compatible chat server on 127.0.0.1, shared by the condenser's and the server captioner's tests.

It misbehaves on demand (timeout, 429, 500, garbage, empty answers, and one
that echoes the Authorization header back, in an error or in its answer),
records every request's body and credentials, and counts the most requests
it holds at once, so concurrency limits and circuit breakers are measured
where they matter: at the endpoint. ``describe`` answers as a VLM would,
from the images it was sent (decoded: data URLs of JPEGs).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def describe_images(body: object) -> str:
    """``"N images of WxH. Prompt: ..."``: the JPEG data URLs in the request's last message, decoded, and its text."""
    from PIL import Image

    content = body["messages"][-1]["content"]  # type: ignore[index]
    sizes, prompt = [], ""
    for part in content:
        if part["type"] == "image_url":
            head, _, data = part["image_url"]["url"].partition(",")
            assert head == "data:image/jpeg;base64", head
            image = Image.open(io.BytesIO(base64.b64decode(data)))
            assert image.format == "JPEG" and image.mode == "RGB"
            sizes.append(f"{image.width}x{image.height}")
        else:
            prompt = part["text"]
    return f"{len(sizes)} images of {', '.join(sorted(set(sizes)))}. Prompt: {prompt}"


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
        self.bodies: list[object] = []
        """Every request's JSON body, in arrival order."""
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.hold: int | None = None
        """When set, each request is held until more than ``hold`` are in flight (or 0.3 s have passed)."""
        self.arrived = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
                with server.lock:
                    server.requests += 1
                    server.bodies.append(body)
                    server.auth.append(self.headers.get("authorization", ""))
                    mode = server.script.pop(0) if server.script else server.default
                    server.in_flight += 1
                    server.peak = max(server.peak, server.in_flight)
                    server.arrived.notify_all()
                    if server.hold is not None:  # a wait, not a measurement: a client over the limit ends it early
                        server.arrived.wait_for(lambda: server.in_flight > server.hold, timeout=0.3)
                try:
                    self._answer(mode, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, mode: str, body: object) -> None:
                if mode == "timeout":
                    time.sleep(1.5)
                    mode = "ok"
                if mode == "ok":
                    self._send(200, json.dumps(_completion("  Caption: A man speaks at a podium.  ")))
                elif mode == "describe":  # a VLM's answer: what the images it was sent are
                    self._send(200, json.dumps(_completion(describe_images(body))))
                elif mode == "429":
                    self._send(429, json.dumps({"error": {"message": "slow down"}}), {"Retry-After": "0"})
                elif mode == "500":
                    self._send(500, json.dumps({"error": {"message": "boom"}}))
                elif mode == "401":
                    self._send(401, json.dumps({"error": {"message": "bad key"}}))
                elif mode == "echo_key":
                    self._send(500, json.dumps({"error": {"message": f"got {self.headers.get('authorization')}"}}))
                elif mode == "echo_answer":  # a 200 whose caption carries the credentials it was sent
                    auth = self.headers.get("authorization", "")
                    basic = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
                    self._send(200, json.dumps(_completion(f"A man speaks at a podium; {auth} {basic}.")))
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
