"""A tiny Open Inference Protocol server on 127.0.0.1 whose metadata a test chooses (broken on purpose),
counting the samples sent to `/infer` (tests only)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class FakeOipServer:
    def __init__(self, metadata, classes: int = 10, endless: float | None = None):
        """`endless`: /infer answers 200 with a body that never ends, 64 KiB every `endless` seconds (0: as fast
        as the socket takes it), until the client hangs up."""
        self.metadata, self.classes, self.endless = metadata, classes, endless
        self.computed = 0
        self.authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream_forever(self, pause_s: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()  # no Content-Length: the body ends when the connection does
                chunk = b'{"outputs": [' + b" " * 65536
                try:
                    while not server.stopping.is_set():
                        self.wfile.write(chunk)
                        server.sent_bytes += len(chunk)
                        if pause_s:
                            time.sleep(pause_s)
                except OSError:
                    pass  # the client hung up
                self.close_connection = True

            def do_GET(self):
                if self.path == "/v2/health/ready":
                    self._send(200, {"ready": True})
                elif self.path.startswith("/v2/models/"):
                    self._send(200, server.metadata)
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.authorizations.append(self.headers.get("Authorization", ""))
                batch = int(request["inputs"][0]["shape"][0])
                server.computed += batch
                if server.endless is not None:
                    self._stream_forever(server.endless)
                    return
                scores = np.zeros((batch, server.classes), np.float32)
                self._send(
                    200,
                    {
                        "outputs": [
                            {
                                "name": "scores",
                                "datatype": "FP32",
                                "shape": list(scores.shape),
                                "data": scores.ravel().tolist(),
                            }
                        ]
                    },
                )

        self.stopping = threading.Event()
        self.sent_bytes = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOipServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
