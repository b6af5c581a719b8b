"""Start model servers (each in its own environment) on 127.0.0.1: KServe serving an ONNX file, MLServer
serving the student's bundle."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[2]
LAUNCHER = PROJECT / "serving" / "kserve_onnx.py"


def server_python() -> Path:
    return Path(os.environ.get("CKD_SERVER_PYTHON", PROJECT / ".venv-server" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(server, what: str) -> str:
    """Poll `{server.url}/v2/health/ready` until 200; stop the server and raise if it dies or times out."""
    deadline = time.monotonic() + server.startup_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{what} server exited with {server.process.returncode}; see {server.log.name}")
        try:
            if httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200:
                return server.url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.__exit__()
    raise RuntimeError(f"{what} server not ready within {server.startup_s} s; see {server.log.name}")


class KServeTeacher:
    """`with KServeTeacher(model) as url:` serves `model` as `teacher` until the block ends."""

    def __init__(self, model: str | Path, name: str = "teacher", startup_s: float = 300.0):
        self.model, self.name, self.startup_s = str(model), name, startup_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        python = server_python()
        if not python.exists():
            raise RuntimeError(f"{python}: the server environment is missing; run `make install`")
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kserve-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [str(python), str(LAUNCHER), "--model", self.model, "--name", self.name, "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return wait_until_ready(self, "KServe")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def mlserver_python() -> Path:
    return Path(os.environ.get("CKD_MLSERVER_PYTHON", PROJECT / ".venv-mlserver" / "bin" / "python"))


class MLServerBundle(KServeTeacher):
    """`with MLServerBundle(models/serving/mlserver) as url:` runs `mlserver start` on that folder on
    127.0.0.1 (REST, gRPC and metrics ports all free ones) until the block ends."""

    def __init__(self, folder: str | Path, startup_s: float = 120.0):
        self.folder, self.startup_s = Path(folder), startup_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def __enter__(self) -> str:
        python = mlserver_python()
        if not python.exists():
            raise RuntimeError(f"{python}: the MLServer environment is missing; run `make install`")
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"mlserver-{self.port}.log", "w")
        env = {
            **os.environ,
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_HTTP_PORT": str(self.port),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
        }
        command = [str(python), "-c", "from mlserver.cli import main; main()", "start", str(self.folder)]
        self.process = subprocess.Popen(command, env=env, cwd=self.folder, stdout=self.log, stderr=subprocess.STDOUT)
        return wait_until_ready(self, "MLServer")
