"""Text: the CSV/Parquet source, the frozen encoder, the exported bundle (tokenizer beside the graph) and
one small end-to-end run of the text pipeline against the stand-in LLM server."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ckd.config import section_from_dict
from ckd.data import Pool, TestSet
from ckd.data.text import load_text_table
from ckd.errors import CkdError, ConfigError
from tests.helpers.text import LABEL_WORDS, write_text_csv


def test_text_table_joins_columns_and_maps_labels(tmp_path):
    path = tmp_path / "news.csv"
    pd.DataFrame({"label": [2, 1, 2, 10], "title": ["A", "B", "", "D"], "description": ["x y", "", "z", "w"]}).to_csv(
        path, index=False
    )
    table = load_text_table(str(path), ["title", "description"], "label")
    assert list(table.texts) == ["A x y", "B", "z", "D w"]
    assert table.class_names == ("1", "2", "10") and list(table.y) == [1, 0, 1, 2]
    pd.read_csv(path).to_parquet(tmp_path / "news.parquet")
    parquet = load_text_table(str(tmp_path / "news.parquet"), ["title", "description"], "label")
    assert list(parquet.texts) == list(table.texts)
    with pytest.raises(CkdError, match="no column.*headline"):
        load_text_table(str(path), ["headline"], "label")


def test_text_and_llm_parameters_are_checked():
    with pytest.raises(ConfigError, match="data.text"):
        section_from_dict("data", {"text": "title"})
    with pytest.raises(ConfigError, match="teacher.label_words"):
        section_from_dict("teacher", {"kind": "openai", "url": "http://x/v1", "model_name": "m"})
    llm = {"kind": "openai", "url": "http://x/v1", "model_name": "m", "label_words": ["World", "Sports"]}
    for bad, parameter in [
        ({"label_words": ["Sports", "sports"]}, "teacher.label_words"),
        ({"prompt": "no placeholder for the input"}, "teacher.prompt"),
        ({"prompt": "{text} {unknown}"}, "teacher.prompt"),
        ({"price_per_1k_input_tokens": -1}, "teacher.price_per_1k_input_tokens"),
        ({"max_tokens": 0}, "teacher.max_tokens"),
        ({"options": {}}, "teacher.options"),  # no free-form options: every key is declared
        ({"url": "ftp://x"}, "teacher.url"),
    ]:
        with pytest.raises(ConfigError) as error:
            section_from_dict("teacher", {**llm, **bad})
        assert str(error.value).startswith(parameter + ":") and ", got " in str(error.value), error.value
    with pytest.raises(ConfigError, match="teacher.prompt"):
        section_from_dict("teacher", {"prompt": "{text}"})  # an LLM key on another backend is refused


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle exported from a random head (the export does not depend on training)."""
    from ckd.export import export_text_bundle
    from ckd.students import build_student

    torch.manual_seed(0)
    head = build_student(
        "mlp", (384,), 4, np.zeros(384, np.float32), np.full(384, 0.05, np.float32), {"hidden": [16]}
    ).eval()
    out = tmp_path_factory.mktemp("bundle") / "student"
    export_text_bundle(head, out, 17, {"class_names": list("abcd")})
    return out, head


TEXTS = [
    "Stocks rallied after the merger.",
    "",
    "Ünïcödé façade — naïve café 東京 🚀",
    "word " * 400,
    "The striker scored twice; the coach was pleased!",
]


def test_bundle_tokenises_exactly_as_training(bundle):
    from ckd.students.text_encoder import load_tokenizer, max_tokens, tokenize
    from ckd.text_bundle import TextBundle

    served = TextBundle(bundle[0]).tokenize(TEXTS)
    trained = tokenize(load_tokenizer(), TEXTS)
    np.testing.assert_array_equal(served[0], trained[0])
    np.testing.assert_array_equal(served[1], trained[1])
    assert served[0].shape[1] == max_tokens()  # the long text is truncated at the encoder's limit


def test_bundle_matches_pytorch_on_raw_text(bundle):
    from ckd.students.text_encoder import embed_texts
    from ckd.text_bundle import TextBundle

    out, head = bundle
    with torch.no_grad():
        expected = head(torch.as_tensor(embed_texts(TEXTS, progress=False))).numpy()
    np.testing.assert_allclose(TextBundle(out).logits(TEXTS), expected, atol=1e-4)
    description = json.loads((out / "bundle.json").read_text())
    assert description["inputs"] == ["input_ids", "attention_mask"] and description["class_names"] == list("abcd")


@pytest.mark.slow
def test_text_pipeline_end_to_end(tmp_path):
    """embed -> sample -> query (stand-in LLM) -> check -> build -> train -> export -> validate: the stages of
    every source, a text source's own branches (embeddings, the text bundle, int8 by dynamic quantisation)."""
    from ckd.query import Queried
    from ckd.stages.build import build
    from ckd.stages.check import check
    from ckd.stages.embed import embed
    from ckd.stages.export import export
    from ckd.stages.query import query
    from ckd.stages.sample import sample
    from ckd.stages.train import train
    from ckd.stages.validate import validate
    from examples.ag_news.llm_server import StandinLLMServer, standin_from_data

    csv = tmp_path / "news.csv"
    write_text_csv(csv, count=90, seed=3)
    data = section_from_dict("data", {"source": str(csv), "text": ["title", "description"], "test_size": 30})
    d = tmp_path
    embed(data, str(d / "embedded.npz"), progress=False)
    with pytest.raises(CkdError, match="data.text"):
        sample(data, 40, 0, 0)
    pool, test, selection, _ = sample(data, 40, 0, 0, str(d / "embedded.npz"))
    pool.save(d / "pool.npz"), test.save(d / "test.npz")
    pool, test = Pool.load(d / "pool.npz"), TestSet.load(d / "test.npz")  # the texts survive the round trip
    assert pool.text is not None and pool.text.shape == (60,) and test.text is not None and test.x.shape == (30, 384)
    llm, _ = standin_from_data(str(csv), ["title", "description"], "label", LABEL_WORDS, 30, 0)
    with StandinLLMServer(llm, "standin-llm") as server:
        teacher = section_from_dict(
            "teacher",
            {
                "kind": "openai",
                "url": server.url,
                "model_name": "standin-llm",
                "label_words": list(LABEL_WORDS),
                "budget": 40,
                "concurrency": 2,
                "max_tokens": 2,
                "store": str(d / "store"),
                "price_per_1k_input_tokens": 1.0,
                "price_per_1k_output_tokens": 2.0,
            },
        )
        queried, metrics = query(teacher, pool, selection, progress=False)
        assert server.computed == 40
    assert metrics["calls_this_run"] == 40 and metrics["completion_tokens_this_run"] == 40
    assert metrics["score_source_logprobs"] == 40
    assert metrics["estimated_cost_this_run"] == pytest.approx(metrics["prompt_tokens_this_run"] / 1000 + 40 * 2 / 1000)
    queried.save(d / "queried.npz")
    queried = Queried.load(d / "queried.npz")  # the answers only: the tokens and cost are the stage's metrics
    assert len(queried.ids) == 40 and queried.unanswered == 0
    check(teacher, queried, pool)
    comparative, _ = build(section_from_dict("comparative", {}), "logits", 0, queried, pool)
    student = section_from_dict(
        "student",
        {
            "method": "ckd",
            "steps": 200,
            "eval_every": 50,
            "augment": "none",
            "unlabelled_weight": 0.0,
            "arch_args": {"hidden": [32]},
        },
    )
    checkpoint, _, _ = train(student, comparative, progress=False)
    onnx, int8 = d / "student.onnx", d / "student.int8.onnx"
    exported = export(
        section_from_dict("export", {}), checkpoint, metrics, pool, selection, onnx, int8, d / "bundle", text=True
    )
    assert exported["int8_bytes"] < exported["bytes"] and (d / "bundle" / "tokenizer.json").is_file()
    result = validate(
        section_from_dict("validate", {"min_accuracy": 0.5, "latency_runs": 3}),
        teacher,
        checkpoint,
        onnx,
        int8,
        test,
        queried,
        metrics,
        pool,
        text_bundle=d / "bundle",
    )
    assert result["onnx_max_abs_diff"] < 1e-4 and result["onnx_test_accuracy"] == result["test_accuracy"]
    assert 0.5 <= result["int8_argmax_agreement"] <= 1 and result["test_size"] == 30
    assert result["onnx_test_accuracy"] >= 0.5 and result["calls_this_run"] == 40
    assert result["estimated_cost"] == metrics["estimated_cost_this_run"]


@pytest.mark.slow
def test_text_source_runs_through_the_one_dvc_yaml(tmp_path, capsys, monkeypatch):
    """The root dvc.yaml's stage commands on a text CSV with an LLM teacher (the stand-in server on 127.0.0.1):
    embed reads the texts, the image/table stages run on the embeddings, export writes the text bundle and its
    int8 graph, validate reads the raw test texts through the bundle; the teacher computed at most the budget."""
    from examples.ag_news.llm_server import StandinLLMServer, standin_from_data
    from tests.test_own_data_e2e import BUDGET, outcome, project, stage_commands

    csv = tmp_path / "news.csv"
    write_text_csv(csv, count=120, seed=5)
    llm, _ = standin_from_data(str(csv), ["title", "description"], "label", LABEL_WORDS, 40, 0)
    with StandinLLMServer(llm, "standin-llm") as server:
        root = project(
            tmp_path / "project",
            {"source": str(csv), "text": ["title", "description"], "test_size": 40},
            {"kind": "openai", "url": server.url, "model_name": "standin-llm", "label_words": list(LABEL_WORDS)},
        )
        metrics = stage_commands(root, capsys, monkeypatch)
        assert server.computed <= BUDGET
    assert json.loads((root / "metrics" / "embed.json").read_text())["texts"] == 120
    assert metrics["test_size"] == 40 and metrics["onnx_test_accuracy"] == metrics["test_accuracy"]
    assert {"tokenizer.json", "bundle.json", "student.onnx"} <= {
        p.name for p in (root / "models" / "serving").iterdir()
    }
    assert "int8_argmax_agreement" in metrics and outcome(root) == metrics
    # The LLM teacher's label words name the classes; the same graph is laid out for the servers.
    serving = root / "models" / "serving"
    assert json.loads((serving / "bundle.json").read_text())["class_names"] == list(LABEL_WORDS)
    assert (serving / "triton" / "ckd_student" / "labels.txt").read_text().split() == list(LABEL_WORDS)
    assert (serving / "triton" / "ckd_student" / "tokenizer.json").is_file()
    card = (root / "models" / "model_card.md").read_text()
    assert "| ONNX Runtime int8 (dynamic) |" in card and f"Teacher: openai `{server.url}` model `standin-llm`" in card
