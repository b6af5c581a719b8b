"""Fixtures shared by the LLM-teacher tests (chat and Batch API paths)."""

import pytest

from examples.ag_news.llm_server import TextClassifierLLM
from tests.helpers.text import LABEL_WORDS, synthetic_texts


@pytest.fixture(scope="module")
def llm():
    """The stand-in LLM's classifier, trained on 300 synthetic texts."""
    texts, labels = synthetic_texts(300, seed=1)
    return TextClassifierLLM(texts, labels, LABEL_WORDS)
