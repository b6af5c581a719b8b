"""Helpers for the tests only (the library never imports them)."""

from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]  # the repository


def linear_onnx_teacher(
    path: Path,
    features: int = 64,
    classes: int = 10,
    input_shape=None,
    seed: int = 0,
    nan_below: float | None = None,
    output_classes: int | None = None,
    two_outputs: bool = False,
) -> Path:
    """A black-box ONNX teacher: logits = flatten(x) W + b. With `nan_below`, rows whose input sum is
    below it come back NaN (log of a negative number), like a broken teacher."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    out_classes = output_classes or classes
    w = rng.normal(size=(features, out_classes)).astype(np.float32) * 0.3
    b = rng.normal(size=(out_classes,)).astype(np.float32)
    input_shape = input_shape or [features]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["raw" if nan_below is not None else "scores"]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    if nan_below is not None:
        nodes += [
            helper.make_node("ReduceSum", ["flat", "axes"], ["total"], keepdims=1),
            helper.make_node("Sub", ["total", "threshold"], ["shifted"]),
            helper.make_node("Log", ["shifted"], ["logged"]),
            helper.make_node("Mul", ["logged", "zero"], ["poison"]),
            helper.make_node("Add", ["raw", "poison"], ["scores"]),
        ]
        inits += [
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array(nan_below, np.float32), "threshold"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", out_classes])]
    if two_outputs:  # logits and probabilities, as many exported classifiers have
        nodes.append(helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", out_classes]))
    graph = helper.make_graph(
        nodes,
        "teacher",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *input_shape])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# The tests' own teacher backend (CKD_PLUGINS, tests/conftest.py): in every copy, so its stages can build it.
PLUGIN_FILES = ("tests/__init__.py", "tests/helpers/__init__.py", "tests/helpers/counting.py")


def copy_project(root: Path, items=("dvc.yaml", "params.yaml", "ckd", "serving")) -> Path:
    """A copy of the project's pipeline in `root` (the tests' own DVC project), with the counting teacher."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for item in (*items, *PLUGIN_FILES):
        source, target = PROJECT / item, root / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return root


def with_changes(params: dict, change: dict) -> dict:
    """A copy of `params` with dotted keys set (a missing section is made; the value None deletes the key)."""
    import copy

    params = copy.deepcopy(params)
    for dotted, value in change.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return params
