"""Start KServe's model server (in its own environment) serving an ONNX teacher on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[2]
LAUNCHER = PROJECT / "serving" / "kserve_onnx_teacher.py"


def server_python() -> Path:
    return Path(os.environ.get("CKD_SERVER_PYTHON", PROJECT / ".venv-server" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class KServeTeacher:
    """`with KServeTeacher(model) as url:` serves `model` as `teacher` until the block ends."""

    def __init__(self, model: str | Path, name: str = "teacher", startup_s: float = 90.0):
        self.model, self.name, self.startup_s = str(model), name, startup_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        python = server_python()
        if not python.exists():
            raise RuntimeError(f"{python}: the server environment is missing; run `make install`")
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kserve-{self.port}.log", "w")
        self.process = subprocess.Popen([str(python), str(LAUNCHER), "--model", self.model, "--name", self.name,
                                         "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"KServe server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"KServe server not ready within {self.startup_s} s; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
