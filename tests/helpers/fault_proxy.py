"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real inference server.

Each `POST .../infer` gets the next fault of a plan: `ok` (forward), `500` and `429` (answered by the
proxy: nothing reaches the server, nothing is computed; a bare 500 does not say so, so the client must
count it), `500ra` (a 500 with `Retry-After`: the server says it ran nothing), `502`, `503` and `504`
(a gateway: forwarded, computed upstream, then answered with the gateway's error), `slow` (forwarded,
computed, and answered only after `slow_s`, past the client's timeout), `reset` (forwarded, computed,
then the connection is reset with no answer), `delay` (forwarded and answered after `delay_s`, within
the client's timeout), `garbage` (forwarded, computed, answered with a tensor of the wrong shape) and `error_body`
(forwarded, computed, answered 200 with an error body). `computed` counts the samples the server was
given, the figure the budget bounds. Other requests (readiness, metadata) pass through untouched.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from examples.ag_news.local_http import LocalServer, QuietHandler, send_json

Plan = Callable[[int], str]


def every(n: int, fault: str, offset: int = 0) -> Plan:
    return lambda i: fault if i % n == offset else "ok"


def at(faults: dict[int, str]) -> Plan:
    return lambda i: faults.get(i, "ok")


class FaultProxy(LocalServer):
    def __init__(self, upstream: str, plan: Plan, slow_s: float = 2.0, retry_after_s: int = 1, delay_s: float = 0.3):
        self.upstream = urlsplit(upstream)
        self.plan, self.slow_s, self.retry_after_s, self.delay_s = plan, slow_s, retry_after_s, delay_s
        self.lock = threading.Lock()
        self.requests = 0
        self.computed = 0
        self.faults: dict[str, int] = {}
        self.authorizations: set[str] = set()
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self):
                proxy._forward(self, None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.endswith("/infer"):
                    proxy._forward(self, body)
                    return
                with proxy.lock:
                    index = proxy.requests
                    proxy.requests += 1
                    fault = proxy.plan(index)
                    proxy.faults[fault] = proxy.faults.get(fault, 0) + 1
                    proxy.authorizations.add(self.headers.get("Authorization", ""))
                if fault == "500":
                    send_json(self, 500, b'{"error": "injected internal error"}')
                elif fault == "500ra":
                    send_json(
                        self,
                        500,
                        b'{"error": "injected: not started, come back later"}',
                        {"Retry-After": str(proxy.retry_after_s)},
                    )
                elif fault == "429":
                    send_json(self, 429, b'{"error": "injected: slow down"}', {"Retry-After": str(proxy.retry_after_s)})
                else:
                    with proxy.lock:
                        proxy.computed += json.loads(body)["inputs"][0]["shape"][0]
                    status, headers, answer = proxy._upstream("POST", self.path, body, self.headers)
                    if fault in ("slow", "delay"):
                        time.sleep(proxy.slow_s if fault == "slow" else proxy.delay_s)
                    if fault == "garbage":
                        name = json.loads(body).get("outputs", [{"name": "logits"}])[0]["name"]
                        answer = json.dumps(
                            {"outputs": [{"name": name, "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}]}
                        ).encode()
                    if fault == "error_body":
                        answer = b'{"error": "model exploded: CUDA out of memory"}'
                    if fault in ("502", "503", "504"):
                        send_json(self, int(fault), b"<html>injected gateway error</html>")
                        return
                    if fault == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection = True
                        return
                    send_json(self, status, answer)

        super().__init__(Handler)
        self.url = self.base_url

    def _upstream(self, method: str, path: str, body: bytes | None, headers) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def _forward(self, handler, body: bytes | None) -> None:
        status, _, answer = self._upstream(handler.command, handler.path, body, handler.headers)
        send_json(handler, status, answer)
