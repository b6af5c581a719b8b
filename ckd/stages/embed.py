"""`embed` (text sources): every text of `data.source` through the frozen sentence encoder, once; free (no
teacher call). Written as one `.npz` (embeddings `x`, labels `y`, `class_names`, the raw `text`) that the
`sample` stage reads; the stages after it are the pipeline's own, on the cached embeddings. An image or table
source (`data.text` null) has nothing to embed: the stage writes an empty file (DVC wants its output) and
`sample` reads the source itself."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ckd.config import DataConfig
from ckd.data import write_arrays
from ckd.data.text import load_text_table
from ckd.errors import ConfigError
from ckd.stages._entry import parser, run


def embed(data: DataConfig, out_path: str, progress: bool = True) -> dict[str, Any]:
    if data.text is None:
        write_arrays(out_path)
        return {"texts": 0, "note": "not a text source (data.text is null): nothing to embed"}
    from ckd.students.text_encoder import ENCODER_NAME, embed_texts, max_tokens

    if data.label is None:
        raise ConfigError("data.label", "a text source needs its label column, got None")
    table = load_text_table(data.source, data.text, data.label)
    start = time.perf_counter()
    embeddings = embed_texts([str(t) for t in table.texts], progress=progress)
    write_arrays(out_path, x=embeddings, y=table.y, class_names=np.asarray(table.class_names), text=table.texts)
    return {
        "texts": int(len(table.texts)),
        "width": int(embeddings.shape[1]),
        "encoder": ENCODER_NAME,
        "max_tokens": max_tokens(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = parser("embed", __doc__)
    p.add_argument("--out", required=True, help="embeddings, labels and texts (.npz)")
    run("embed", p, lambda args, params: embed(params.data, args.out), argv)


if __name__ == "__main__":
    main()
