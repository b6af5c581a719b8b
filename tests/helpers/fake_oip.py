"""A tiny Open Inference Protocol server on 127.0.0.1 whose metadata a test chooses (broken on purpose),
counting the samples sent to `/infer` (tests only)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class FakeOipServer:
    def __init__(self, metadata, classes: int = 10):
        self.metadata, self.classes = metadata, classes
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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOipServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
