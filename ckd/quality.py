"""Great Expectations (1.x, ephemeral context) guards the teacher outputs before anything uses them, with a
suite built from what the run knows: samples answered, budget, pool ids, classes, probabilities or not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ckd.errors import QualityError
from ckd.reports import offline_data_docs

PROBABILITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ScoreExpectations:
    expected_rows: int
    budget: int
    pool_ids: np.ndarray
    num_classes: int
    probabilities: bool


def _frame(ids: np.ndarray, scores: np.ndarray, pool_ids: np.ndarray) -> Any:
    import pandas as pd

    frame = pd.DataFrame(scores.astype(np.float64), columns=[f"score_{c}" for c in range(scores.shape[1])])
    frame.insert(0, "id", ids.astype(np.int64))
    with np.errstate(all="ignore"):
        frame["row_is_finite"] = np.isfinite(scores).all(axis=1)
        frame["row_sum"] = scores.sum(axis=1)
    # Rows compared by value, not by their bytes: -0.0 and 0.0 (or two NaN payloads) are one value.
    unique = np.unique(np.nan_to_num(scores.astype(np.float64) + 0.0), axis=0, return_inverse=True)
    frame["row_fingerprint"] = unique[1].reshape(-1)
    # Pool membership computed here (sorted search), not as a GX value set of every pool id: that set is validated
    # and serialised with the suite, the check stage's fastest-growing cost (35 s at 10,000 ids; bench/scaling.md).
    frame["id_in_pool"] = np.isin(ids.astype(np.int64), np.asarray(pool_ids, np.int64))
    return frame


def _suite(spec: ScoreExpectations, num_columns: int) -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="teacher_outputs")
    suite.add_expectation(gxe.ExpectTableRowCountToEqual(value=spec.expected_rows))
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=spec.budget))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="id_in_pool", value_set=[True]))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="row_is_finite", value_set=[True]))
    # id + one column per class + 4 derived columns: the score width equals the number of classes.
    suite.add_expectation(gxe.ExpectTableColumnCountToEqual(value=spec.num_classes + 5))
    if spec.expected_rows > 1:
        suite.add_expectation(gxe.ExpectColumnUniqueValueCountToBeBetween(column="row_fingerprint", min_value=2))
    if spec.probabilities:
        bounds = [(f"score_{c}", 0.0, 1.0) for c in range(min(num_columns, spec.num_classes))]
        bounds.append(("row_sum", 1 - PROBABILITY_TOLERANCE, 1 + PROBABILITY_TOLERANCE))
        for column, low, high in bounds:
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    return suite


def check_teacher_outputs(
    ids: np.ndarray, scores: np.ndarray, spec: ScoreExpectations, artifact: str, docs_dir: str | Path | None = None
) -> dict[str, Any]:
    """Validate the stored outputs; raise QualityError, one line naming the likely cause and the rest. With
    `docs_dir`, also render Data Docs (static HTML) there, their index named in the summary and the error."""
    import great_expectations as gx

    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise QualityError(f"{artifact}: scores must be a [samples, classes] matrix, got shape {scores.shape}")
    context = gx.get_context(mode="ephemeral")
    actions = []
    if docs_dir is not None:
        docs_dir = Path(docs_dir)  # kept as given (relative in the pipeline): no machine path in metrics
        index = {"class_name": "DefaultSiteIndexBuilder"}
        backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())}
        site = {"class_name": "SiteBuilder", "site_index_builder": index, "store_backend": backend}
        context.add_data_docs_site(site_name="ckd", site_config=site)
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["ckd"]))
    asset = context.data_sources.add_pandas("teacher").add_dataframe_asset("teacher_outputs")
    batch = asset.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(_suite(spec, scores.shape[1]))
    validation = gx.ValidationDefinition(name="teacher_outputs", data=batch, suite=suite)
    validations = [context.validation_definitions.add(validation)]
    checkpoint = gx.Checkpoint(
        name="check", validation_definitions=validations, actions=actions, result_format="SUMMARY"
    )
    run = context.checkpoints.add(checkpoint).run(batch_parameters={"dataframe": _frame(ids, scores, spec.pool_ids)})
    (result,) = run.run_results.values()
    failed = [item for item in result.results if not item.success]
    summary: dict[str, Any] = {"expectations": len(result.results), "failed": len(failed), "success": not failed}
    docs = ""
    if docs_dir is not None:
        offline_data_docs(docs_dir)  # no network needed to read them: static tables, no CDN scripts
        summary["data_docs"] = str(docs_dir / "index.html")
        docs = f"; Great Expectations Data Docs: {docs_dir / 'index.html'}"
    if failed:
        raise QualityError(f"{artifact}: {_likely_cause(failed, scores, spec)}{docs}")
    return summary


def _likely_cause(failed: list[Any], scores: np.ndarray, spec: ScoreExpectations) -> str:
    """One line: what most likely went wrong, from the failed expectations and the scores themselves, then
    the other failed expectations by name (the Data Docs hold every detail)."""
    columns = [item.expectation_config.kwargs.get("column") or "" for item in failed]
    finite = scores[np.isfinite(scores).all(axis=1)] if scores.size else scores
    cause, explained = None, set()
    if "row_is_finite" in columns:
        bad = int((~np.isfinite(scores).all(axis=1)).sum())
        cause, explained = f"{bad} of {len(scores)} rows hold NaN or infinite scores", {"row_is_finite", "row_sum"}
    elif spec.probabilities and finite.size and (finite < 0).any():  # a probability is never negative: logits
        outside = int(((finite < 0) | (finite > 1)).any(axis=1).sum())
        cause = (
            f"{outside} of {len(scores)} rows have scores outside [0, 1] (from {finite.min():.4g} to "
            f"{finite.max():.4g}) with teacher.scores: probabilities; the teacher most likely gives logits "
            "(set teacher.scores: logits)"
        )
        explained = {c for c in columns if c.startswith("score_")} | {"row_sum"}
    elif spec.probabilities and "row_sum" in columns and finite.size:  # scores above 1 follow from the sums
        sums = finite.sum(axis=1)
        off = np.abs(sums - 1) > PROBABILITY_TOLERANCE
        cause = (
            f"{int(off.sum())} of {len(scores)} rows do not sum to 1 (observed sums {sums[off].min():.4g} to "
            f"{sums[off].max():.4g}) with teacher.scores: probabilities; the teacher's rows are not distributions"
        )
        explained = {c for c in columns if c.startswith("score_")} | {"row_sum"}
    rest = [(item, column) for item, column in zip(failed, columns) if column not in explained]
    if cause is None:  # none of those: the first failed expectation, described
        config, result = rest[0][0].expectation_config, rest[0][0].result
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "value_set")}
        observed = result.get("observed_value", result.get("unexpected_count"))
        cause, rest = f"failed {config.type} {kwargs} (observed {observed})", rest[1:]
    if rest:
        cause += "; also failed: " + ", ".join(
            item.expectation_config.type + (f"({c})" if c else "") for item, c in rest
        )
    return cause
