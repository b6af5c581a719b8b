"""What the example's stand-in LLM server and the tests' stand-in servers share: a quiet HTTP/1.1 handler, one
JSON reply, and a threading server on 127.0.0.1 that serves while a `with` block runs. (The tests import it
from here; the example never imports tests/.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive (HTTP/1.1) and no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: Mapping[str, Any] | bytes,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    """One reply: `payload` as JSON (bytes: as they are) with its length and `headers`. A client that gave up
    (its timeout) loses the answer, as in real life: nothing is raised."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


class LocalServer:
    """`handler` served on 127.0.0.1 (`port` 0: a free one, `base_url` says which) by a daemon thread, from the
    `with` block's start to its end."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()
