"""`train`: the student (`student.method`), model selection on validation data only (`ckd.train`)."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from ckd.comparative import ComparativeSet
from ckd.config import Params, StudentConfig
from ckd.data import TestSet
from ckd.metrics import accuracy_probe, write_training_log
from ckd.runtime import torch_device
from ckd.stages._entry import parser, run
from ckd.students.checkpoint import StudentCheckpoint
from ckd.train import split_rows, train_student

log = logging.getLogger(__name__)


def train(
    student: StudentConfig, data: ComparativeSet, test: TestSet | None = None, progress: bool = True
) -> tuple[StudentCheckpoint, list[dict[str, Any]], dict[str, Any]]:
    """Returns the checkpoint, the winner's curve and the metrics. With `test`, the curve also shows test
    accuracy, for the plot only (selection reads validation data alone)."""
    device = torch_device(student.device)
    labelled_test = test is not None and len(test.x) > 0
    held_out: list[int] = []
    if test is not None and not labelled_test:
        # No labelled test set: the validation part stays unseen (no refit), so `validate` can measure the
        # student's agreement with the teacher there.
        student = student.model_copy(update={"refit": False})
        _, val_rows = split_rows(len(data.x), student.val_fraction, student.seed)
        held_out = [int(i) for i in data.ids[val_rows]]
        log.info("no labelled test set: no refit; %d queried samples held out for teacher agreement", len(held_out))
    probe = accuracy_probe(test.x, test.labels, "test_accuracy") if test is not None and labelled_test else None
    start = time.perf_counter()
    outcome = train_student(data, student, device, progress, on_eval=probe)
    seconds = time.perf_counter() - start
    checkpoint = StudentCheckpoint(
        state_dict={k: v.cpu() for k, v in outcome.model.state_dict().items()},
        arch=student.arch,
        arch_args=dict(student.arch_args),
        sample_shape=list(data.x.shape[1:]),
        num_classes=data.num_classes,
        class_names=list(data.class_names),
        method=student.method,
        chosen={"lr": outcome.chosen.lr, **outcome.chosen.method_args},
        teacher_samples=int(len(data.x)) - len(held_out),
        held_out_ids=held_out,
    )
    metrics = {
        "method": student.method,
        "val_accuracy": outcome.val_accuracy,
        "best_step": outcome.best_step,
        "chosen": checkpoint.chosen,
        "selection": outcome.selection,
        "device": outcome.device,
        "train_seconds": round(seconds, 2),
        "augment": outcome.augment,
        "refit": student.refit,
        "threads": outcome.threads,
        "precision": outcome.precision,  # text: logged, not a metric (the parameter student.precision says it)
    }
    return checkpoint, outcome.curve, metrics


def main(argv: list[str] | None = None) -> None:
    p = parser("train", __doc__)
    p.add_argument("--data", required=True, help="the comparative data set (.npz)")
    p.add_argument("--out", required=True, help="the student checkpoint")
    p.add_argument("--log-dir", required=True, help="DVCLive's folder: the curves and this stage's metrics.json")
    p.add_argument("--test", default=None, help="the test split, for the curve of test accuracy (plot only)")
    p.set_defaults(metrics=None)  # this stage's metrics file is <log-dir>/metrics.json, next to its curves

    def body(args: argparse.Namespace, params: Params) -> dict[str, Any]:
        test = TestSet.load(args.test) if args.test else None
        checkpoint, curve, metrics = train(params.student, ComparativeSet.load(args.data), test)
        checkpoint.save(args.out)
        write_training_log(args.log_dir, curve, metrics)
        return metrics

    run("train", p, body, argv)


if __name__ == "__main__":
    main()
