"""A local HTTP server for a built site, for viewing it from ``acav1m site --serve``.

The site works from ``file://`` and any static host; this server exists because Python's stock handler ignores
byte-range requests, which browsers use to seek in videos. It binds 127.0.0.1 only and lists no folders.
"""

from __future__ import annotations

import http.server
import os
import re
from functools import partial
from pathlib import Path
from typing import Any


def make_server(site_dir: Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``site_dir`` bound to 127.0.0.1 only (port 0: any free port).

    It answers byte-range requests, which browsers use to seek in videos and
    which Python's stock handler ignores.
    """
    handler = partial(_RangeHandler, directory=str(Path(site_dir).resolve()))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(site_dir: Path, port: int = 8000) -> None:
    """Serve ``site_dir`` on http://127.0.0.1:PORT/ until interrupted (local viewing only)."""
    with make_server(site_dir, port) as server:
        print(f"Serving {site_dir} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (video seeking) and no directory listings."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mp4": "video/mp4",
    }

    def list_directory(self, path: Any) -> None:  # noqa: ANN401 - signature of the base class
        self.send_error(404, "No directory listings")
        return None

    def send_head(self) -> Any:  # noqa: ANN401
        range_header = self.headers.get("Range")
        path = self.translate_path(self.path)
        match = re.match(r"^bytes=(\d*)-(\d*)$", range_header or "")
        if not match or not os.path.isfile(path) or not any(match.groups()):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:  # noqa: ANN401
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        self._remaining = None
        while remaining > 0:
            block = source.read(min(remaining, 1 << 16))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)

    def end_headers(self) -> None:
        if not self.headers.get("Range"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()
