"""Small synthetic text data for the text tests (the project must work without ../shared/data)."""

from __future__ import annotations

import numpy as np

LABEL_WORDS = ("World", "Sports", "Business", "Science")
_TOPIC_WORDS = (
    ("minister", "election", "war", "treaty", "embassy", "parliament", "refugees", "summit"),
    ("match", "goal", "coach", "league", "tennis", "championship", "striker", "season"),
    ("shares", "profit", "market", "bank", "merger", "earnings", "investors", "stocks"),
    ("software", "nasa", "research", "internet", "chip", "genome", "telescope", "computer"),
)
_COMMON = ("the", "a", "said", "on", "in", "new", "after", "report", "today", "reuters")


def synthetic_texts(count: int, seed: int = 0, own: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """`count` short news-like texts of 4 topics (5 topic words, 4 common words) and their labels. `own` < 1:
    each topic word is the text's own topic's with that probability, else any topic's (ambiguous texts)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, count)
    texts = []
    for label in labels:
        if own < 1:
            topics = np.where(rng.random(5) < own, label, rng.integers(0, 4, 5))
            topical = [rng.choice(_TOPIC_WORDS[topic]) for topic in topics]
        else:
            topical = list(rng.choice(_TOPIC_WORDS[label], 5))
        words = topical + list(rng.choice(_COMMON, 4))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    return np.asarray(texts), labels.astype(np.int64)


def write_text_csv(path, count: int = 200, seed: int = 0, own: float = 1.0) -> None:
    import pandas as pd

    texts, labels = synthetic_texts(count, seed, own)
    titles = [t.split()[0] for t in texts]
    pd.DataFrame({"label": labels + 1, "title": titles, "description": texts}).to_csv(path, index=False)
