"""A local HTTP server for fetch tests: serves a folder with range requests, logs every request, misbehaves on cue.

``counts[path]`` counts the GET requests for a path, ``heads[path]`` the HEAD requests (fsspec asks a file's size
first). ``plans[path]`` is a list of misbehaviours answered in order, one per request of either kind, before the file
is served normally; ``always[path]`` is one answered every time. A misbehaviour is an HTTP status (``500``),
``(429, seconds)`` (a status with ``Retry-After``), ``"stall"`` (no answer until the server stops). ``hold``
seconds pass before each answer, so that fetches overlap; ``most_at_once`` is the most distinct paths that had a
request in flight at one moment: the fetches to this host at once (one fetch may send a few requests for its file,
one after the other or overlapping, so requests are counted by path). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections import Counter
from pathlib import Path

Misbehaviour = int | tuple[int, int] | str


class MediaServer:
    def __init__(self, folder: Path) -> None:
        self.counts: Counter[str] = Counter()
        self.heads: Counter[str] = Counter()
        self.plans: dict[str, list[Misbehaviour]] = {}
        self.always: dict[str, Misbehaviour] = {}
        self.stopping = threading.Event()
        self.hold = 0.0
        self.in_flight: Counter[str] = Counter()
        self.most_at_once = 0
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._handle(body=True)

            def do_HEAD(self) -> None:
                self._handle(body=False)

            def _handle(self, body: bool) -> None:
                with server._lock:
                    (server.counts if body else server.heads)[self.path] += 1
                    server.in_flight[self.path] += 1
                    server.most_at_once = max(server.most_at_once, len(+server.in_flight))
                try:
                    server.stopping.wait(server.hold)
                    self._answer(body)
                finally:
                    with server._lock:
                        server.in_flight[self.path] -= 1

            def _answer(self, body: bool) -> None:
                plan = server.plans.get(self.path)
                action = server.always.get(self.path) or (plan.pop(0) if plan else None)
                if action is None:
                    self._serve(body)
                elif action == "stall":
                    server.stopping.wait()  # the request is read, and never answered
                else:
                    status, wait = action if isinstance(action, tuple) else (action, None)
                    self.send_response(status)
                    if wait is not None:
                        self.send_header("Retry-After", str(wait))
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _serve(self, body: bool) -> None:
                path = self.translate_path(self.path)
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                size = os.path.getsize(path)
                asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                first = int(asked[1]) if asked else 0
                last = min(int(asked[2]), size - 1) if asked and asked[2] else size - 1
                self.send_response(206 if asked else 200)
                if asked:
                    self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
                self.send_header("Content-Type", self.guess_type(path))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(last - first + 1))
                self.end_headers()
                if not body:
                    return
                with open(path, "rb") as handle:
                    handle.seek(first)
                    length = last - first + 1
                    try:
                        self.wfile.write(handle.read(length))
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client stopped reading: ffmpeg does when it has its window

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def requests(self, path: str) -> int:
        """Every request for ``path``, GET and HEAD."""
        return self.counts[path] + self.heads[path]

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_copies(folder: Path, sources: dict[str, Path]) -> MediaServer:
    """A server over ``folder`` holding a copy of each source under its name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        shutil.copyfile(source, folder / name)
    return MediaServer(folder)
