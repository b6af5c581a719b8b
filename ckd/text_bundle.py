"""A text student at inference: raw texts -> label names with ONNX Runtime and `tokenizers` only.

    from ckd.text_bundle import TextBundle
    bundle = TextBundle("models/serving")
    bundle.predict(["Stocks rallied after the merger."])        # -> ["Business"]
    bundle.predict_proba(texts)                                 # [texts, classes], rows sum to 1

The bundle (written by `ckd.export.export_text_bundle`) is three files:

    student.onnx    token ids -> frozen encoder -> trained head -> logits
    tokenizer.json  the exact tokenizer of training (truncation and padding settings included)
    bundle.json     file names, input and output names, class names (an LLM teacher's label words), token limit

No torch nor transformers (a test checks it): a service that predicts needs `onnxruntime`, `tokenizers`, `numpy`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ckd.errors import CkdError
from ckd.extras import require
from ckd.runtime import onnx_session
from ckd.timing import median_ms

MODEL_FILE, TOKENIZER_FILE, BUNDLE_FILE = "student.onnx", "tokenizer.json", "bundle.json"
TEXT_INPUT_NAMES = ("input_ids", "attention_mask")


class TextBundle:
    """Raw texts -> logits, probabilities or label names through the bundle alone (its tokenizer file and its
    ONNX graph). `model`: another graph with the same inputs (the int8 one) in place of the bundle's."""

    def __init__(self, bundle_dir: str | Path, threads: int | None = None, model: str | Path | None = None) -> None:
        Tokenizer = require("tokenizers", "a text model bundle").Tokenizer

        self.dir = Path(bundle_dir)
        if not (self.dir / BUNDLE_FILE).is_file():
            raise CkdError(
                f"{self.dir}: not a text model bundle (no {BUNDLE_FILE}); run the export stage on a text source"
            )
        self.description = json.loads((self.dir / BUNDLE_FILE).read_text())
        self.tokenizer = Tokenizer.from_file(str(self.dir / self.description["tokenizer"]))
        self.session = onnx_session(model or self.dir / self.description["model"], threads=threads)
        self.class_names: list[str] | None = self.description.get("class_names")

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64 [texts, tokens]: the served graph's inputs."""
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        return (
            np.asarray([e.ids for e in encodings], np.int64),
            np.asarray([e.attention_mask for e in encodings], np.int64),
        )

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t) for t in texts]
        order = np.argsort([len(t) for t in texts], kind="stable")  # little padding per batch
        out = None
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            feeds = dict(zip(self.description["inputs"], self.tokenize([texts[i] for i in rows])))
            (batch,) = self.session.run([self.description["output"]], feeds)
            out = np.zeros((len(texts), batch.shape[1]), np.float32) if out is None else out
            out[rows] = batch
        return out if out is not None else np.zeros((0, len(self.class_names or ())), np.float32)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities [texts, classes], columns in the order of `class_names`: softmax(z)_k =
        exp(z_k - max z) / sum_j exp(z_j - max z), row by row."""
        logits = self.logits(texts, batch_size)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[str]:
        """The most probable class of each text, by name (an LLM teacher's label word, else the data's label)."""
        if not self.class_names:
            raise CkdError(f"{self.dir / BUNDLE_FILE}: names no classes (class_names); re-run the export stage")
        return [self.class_names[k] for k in self.logits(texts, batch_size).argmax(axis=1)]

    def latency_ms_batch1(self, text: str, runs: int) -> float:
        """Median wall time of one text through tokenizer and ONNX Runtime, in milliseconds."""
        return median_ms(lambda: self.logits([text]), runs, warmup=5)
