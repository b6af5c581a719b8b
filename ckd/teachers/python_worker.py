"""The process a `python` teacher's function runs in (`ckd.teachers.python_callable`), apart from `query`.

    python -m ckd.teachers.python_worker FD package.module:function

Over the socket FD (multiprocessing's framing) it answers b"ready" (or b"E<why>") once the module is imported,
then to each batch (an .npy array, no pickle) b"A" + the scores' .npy, b"U" + their repr when they are not an
array of numbers (paid, kept apart by `query`), or b"E<type>: <message>" when the function raised anything,
`sys.exit` and `KeyboardInterrupt` included. What it prints goes to stderr; Ctrl-C is the parent's to handle.
"""

from __future__ import annotations

import importlib
import io
import os
import signal
import sys
from multiprocessing.connection import Connection

import numpy as np

PATH_ENV = "CKD_PYTHON_TEACHER_PATH"  # the parent's sys.path: the module is found where `query` found it


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__)[:500]


def serve(fd: int, target: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.stderr
    sys.path[:0] = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    conn = Connection(fd)
    module_name, function_name = target.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except BaseException as error:  # noqa: BLE001 (sys.exit at import time too: reported, not a silent end)
        conn.send_bytes(b"E" + _describe(error).encode())
        return
    conn.send_bytes(b"ready")
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is done
        x = np.load(io.BytesIO(request), allow_pickle=False)
        try:
            answer = np.asarray(function(x))
        except BaseException as error:  # noqa: BLE001 (sys.exit, KeyboardInterrupt: a failed batch, one line)
            conn.send_bytes(b"E" + _describe(error).encode())
            continue
        if answer.dtype.kind not in "biuf":
            conn.send_bytes(b"U" + repr(answer)[:20000].encode())
            continue
        buffer = io.BytesIO()
        np.save(buffer, answer, allow_pickle=False)
        conn.send_bytes(b"A" + buffer.getvalue())


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
