"""Issue 18: an ONNX teacher's identity is what it computes (a canonical graph and its weights), never its names;
a ZipMap output (skl2onnx's default for a classifier) is refused before any call."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ckd.errors import CkdError
from ckd.query import run_query
from ckd.teachers.onnx_file import OnnxFileTeacher, graph_sha256
from tests.helpers import linear_onnx_teacher


def renamed(source, target, reorder=False):
    """The same model with every node and value renamed, another graph name and doc strings; with `reorder`, its
    nodes listed in reverse order."""
    model = onnx.load(str(source))
    names = {v.name: f"v{i}_renamed" for i, v in enumerate([*model.graph.input, *model.graph.initializer])}
    for node in model.graph.node:
        for name in node.output:
            names.setdefault(name, f"{name}_out_renamed")
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = names.get(value.name, value.name)
        value.doc_string = "renamed"
    for tensor in graph.initializer:
        tensor.name = names[tensor.name]
    for index, node in enumerate(graph.node):
        node.name = f"node_{index}_renamed"
        node.doc_string = "a node"
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    if reorder:
        nodes = list(graph.node)
        graph.ClearField("node")
        graph.node.extend(nodes[::-1])  # not topologically sorted: the identity sorts it
    graph.name = "another name"
    graph.doc_string = "documented"
    model.doc_string = "documented model"
    model.producer_name = "someone else"
    onnx.save(model, str(target))
    return target


def test_renaming_nodes_values_graph_name_and_doc_strings_keeps_the_identity(tmp_path):
    original = linear_onnx_teacher(tmp_path / "a.onnx", features=4, classes=3)
    copy = renamed(original, tmp_path / "b.onnx")
    shuffled = renamed(original, tmp_path / "c.onnx", reorder=True)
    assert original.read_bytes() != copy.read_bytes()
    assert graph_sha256(original) == graph_sha256(copy) == graph_sha256(shuffled)
    assert OnnxFileTeacher(str(original)).identity == OnnxFileTeacher(str(copy)).identity
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(OnnxFileTeacher(str(original)).predict(x), OnnxFileTeacher(str(copy)).predict(x))


def test_renamed_teacher_is_not_paid_again(tmp_path):
    original = linear_onnx_teacher(tmp_path / "a.onnx", features=4, classes=3)
    copy = renamed(original, tmp_path / "b.onnx")
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    store = str(tmp_path / "store")
    first = run_query(OnnxFileTeacher(str(original)), np.arange(20), x, 3, budget=20, store=store, progress=False)
    again = run_query(OnnxFileTeacher(str(copy)), np.arange(20), x, 3, budget=20, store=store, progress=False)
    assert first.calls_this_run == 20 and again.calls_this_run == 0 and len(again.ids) == 20


@pytest.mark.parametrize("change", ["weights", "seed", "output"])
def test_what_it_computes_changes_the_identity(tmp_path, change):
    original = linear_onnx_teacher(tmp_path / "a.onnx", features=4, classes=3, two_outputs=True)
    other = tmp_path / "b.onnx"
    if change == "weights":  # one weight nudged
        model = onnx.load(str(original))
        w = numpy_helper.to_array(model.graph.initializer[0]).copy()
        w[0, 0] += 1e-3
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, model.graph.initializer[0].name))
        onnx.save(model, str(other))
    elif change == "seed":
        linear_onnx_teacher(other, features=4, classes=3, seed=1, two_outputs=True)
    if change == "output":  # the same file, its other output
        assert (
            OnnxFileTeacher(str(original), "scores").identity
            != OnnxFileTeacher(str(original), "probabilities").identity
        )
        return
    assert graph_sha256(original) != graph_sha256(other)


def zipmap_classifier(path, classes=3):
    """What skl2onnx writes for a classifier by default: a label and a ZipMap output (a sequence of maps)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, classes)).astype(np.float32), "coef")
    nodes = [
        helper.make_node("MatMul", ["float_input", "coef"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["output_label"], axis=1, keepdims=0),
        helper.make_node(
            "ZipMap", ["probabilities"], ["output_probability"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]
        ),
    ]
    maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    )
    graph = helper.make_graph(
        nodes,
        "sklearn",
        [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 4])],
        [
            helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]),
            helper.make_value_info("output_probability", maps),
        ],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("output", [None, "output_probability"])
def test_a_zipmap_output_is_refused_before_any_call_naming_the_fix(tmp_path, output):
    path = zipmap_classifier(tmp_path / "sklearn.onnx")
    with pytest.raises(CkdError) as error:
        OnnxFileTeacher(str(path), output)
    message = str(error.value)
    assert "options={'zipmap': False}" in message and "\n" not in message
    if output is not None:
        assert "teacher.output: 'output_probability'" in message and "seq(map(int64,tensor(float)))" in message
