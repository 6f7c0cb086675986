"""The stock Evaluator's configuration and results: TFMA's gate on the ranked candidates.

One example per (request, candidate) (models/evaluation/candidates.py), scored
by the recommender's ``score_examples`` signature. Every metric is computed per
request (``query_key``): NDCG and MinLabelPosition of the request's list, AUC over
its candidates (TFMA flattens them: the same AUC as one example per candidate) and
ExampleCount, which then counts requests. Slices, all of them the request's: the
user's gender, age band, occupation and activity band. Thresholds, on the whole eval
split (slices are reported, not gated): NDCG@K and AUC must reach their configured
values, and NDCG@K may fall at most ``max_ndcg_drop`` below the served model's (the
change threshold; skipped when nothing is served). A threshold on NDCG@K is keyed by
``binarize.top_k_list``, not by the metric's own ``top_k_list`` (TFMA reports
"Metric not found" otherwise).

Why per request: TFMA spends its Python per (element, slice) pair. With AUC per
candidate, 300 requests of 50 candidates made 15,000 elements in about 6.5 slices
each; per request they are 300 elements in 5 slices, and the step takes about 0.6 of
the time (``make bench-evaluator``; README, "What a run costs"). Slices by an item's
attribute (genre, popularity) were dropped with it: per request they put a request in
every genre its candidates have, which said nothing.
"""

from __future__ import annotations

import json
from typing import Dict, List

import tensorflow_model_analysis as tfma

from models.evaluation import candidates
from models.evaluation.config import EvalConfig

SIGNATURE = "score_examples"
PREDICTION = "scores"
OVERALL = "Overall"


def eval_config(config: EvalConfig) -> tfma.EvalConfig:
    """The stock Evaluator's EvalConfig for the evaluation section ``config``."""
    ndcg_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_ndcg}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_ndcg_drop}))
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_auc}))
    return tfma.EvalConfig(
        # The model type given: TFMA otherwise loads the model once more, as Keras, to find it.
        model_specs=[tfma.ModelSpec(signature_name=SIGNATURE, label_key=candidates.GAIN,
                                    prediction_key=PREDICTION, model_type=tfma.TF_GENERIC)],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=list(keys))
                                              for keys in candidates.SLICES],
        metrics_specs=[
            tfma.MetricsSpec(
                query_key=candidates.REQUEST,
                binarize=tfma.BinarizationOptions(top_k_list={"values": [config.ndcg_k]}),
                metrics=[tfma.MetricConfig(class_name="NDCG",
                                           config=json.dumps({"gain_key": candidates.GAIN}),
                                           per_slice_thresholds=[_overall(ndcg_threshold)])]),
            # 1,000 thresholds, not TFMA's 10,000: the scores are positions in a list of
            # max_k items (steps of 1 / max_k), so finer buckets add nothing but cost (each
            # slice's AUC sums its histogram over every threshold).
            tfma.MetricsSpec(query_key=candidates.REQUEST, metrics=[
                tfma.MetricConfig(class_name="MinLabelPosition"),
                tfma.MetricConfig(class_name="AUC", config=json.dumps({"num_thresholds": 1000}),
                                  per_slice_thresholds=[_overall(auc_threshold)]),
                tfma.MetricConfig(class_name="ExampleCount")]),
        ])


def _overall(threshold: tfma.MetricThreshold) -> tfma.PerSliceMetricThreshold:
    # Gates apply to the whole eval split; slices are reported, not gated (small slices are noise).
    return tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)


def _slice_name(slice_key) -> str:
    parts = []
    for single in slice_key.single_slice_keys:
        value = single.WhichOneof("kind")
        value = getattr(single, value) if value else ""
        parts.append(f"{single.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or OVERALL


def _metric_name(key) -> str:
    name = key.name
    if key.HasField("sub_key") and key.sub_key.HasField("top_k"):
        name += f"@{key.sub_key.top_k.value}"
    return name


def read(evaluation_uri: str) -> Dict[str, object]:
    """The stock Evaluator's output: metrics per slice and model, and the validation.

    Returns:
      {'slices': {slice: {metric: {'candidate': v[, 'baseline': v, 'diff': v]}}},
       'validation': {'ok': bool, 'failures': [message], 'baseline': bool}}.
    """
    slices: Dict[str, Dict[str, Dict[str, float]]] = {}
    has_baseline = False
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        table = slices.setdefault(_slice_name(metrics_for_slice.slice_key), {})
        for item in metrics_for_slice.metric_keys_and_values:
            value = item.value
            if not value.HasField("double_value"):
                continue
            model = "diff" if item.key.is_diff else ("baseline" if item.key.model_name == "baseline"
                                                      else "candidate")
            has_baseline |= model == "baseline"
            table.setdefault(_metric_name(item.key), {})[model] = value.double_value.value
    validation = tfma.load_validation_result(evaluation_uri)
    failures: List[str] = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(_failure(failure, _slice_name(per_slice.slice_key)))
    return {"slices": slices, "validation": {"ok": bool(validation.validation_ok),
                                             "failures": failures, "baseline": has_baseline}}


def _failure(failure, slice_name: str) -> str:
    """A failed threshold in words."""
    name, value = _metric_name(failure.metric_key), failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if threshold.HasField("change_threshold"):
        return (f"{name} {value:+.4f} against the served model on {slice_name} (allowed down to "
                f"{threshold.change_threshold.absolute.value:+.4f})")
    return (f"{name} {value:.4f} on {slice_name} (required >= "
            f"{threshold.value_threshold.lower_bound.value:.4f})")


def reason(result: Dict[str, object]) -> str:
    """The verdict of ``read``'s result in one line."""
    overall = result["slices"].get(OVERALL, {})
    figures = ", ".join(f"{name} {values['candidate']:.4f}" for name, values in sorted(overall.items())
                        if name != "example_count" and "candidate" in values)
    served = "" if result["validation"]["baseline"] else " (no served model: no change threshold)"
    if result["validation"]["ok"]:
        return f"stock Evaluator (TFMA): {figures}, thresholds met{served}"
    return f"stock Evaluator (TFMA) failed: {'; '.join(result['validation']['failures'])}"
