"""Level 1: the run report's pieces, the stock Evaluator's configuration and its examples' fields."""

import json
import re

import pytest

from models.evaluation import candidates, tfma_gate
from models.evaluation.config import EvalConfig
from presentation import charts, report, summary


def _stats(gender_f: float, mean_age: float):
    return {"train": {"examples": 10, "features": {
        "gender": {"kind": "categorical", "unique": 2, "missing": 0,
                   "top": {"F": gender_f, "M": 1 - gender_f}},
        "age": {"kind": "numeric", "mean": mean_age, "std": 1.0, "min": 1, "max": 9, "zeros": 0,
                "missing": 0}}}}


def test_drift_is_the_l_infinity_distance_and_the_relative_mean_change():
    rows = {r["feature"]: r for r in report.drift(_stats(0.7, 33.0), _stats(0.5, 30.0))}
    assert rows["gender"]["distance"] == pytest.approx(0.2) and rows["gender"]["flag"]
    assert rows["age"]["distance"] == pytest.approx(0.1) and not rows["age"]["flag"]
    # A feature the previous run did not have is not compared.
    assert report.drift(_stats(0.5, 30.0), {}) == []


def test_charts_are_inline_svg_with_one_mark_per_value():
    line = charts.line_chart({"loss": [3.0, 2.0, 1.5]}, "Loss")
    assert line.startswith("<svg") and line.count("<circle") == 3 and "http://www.w3.org/2000/svg" in line
    bars = charts.bar_chart(["recall@10", "mrr"], {"model": [0.2, 0.3], "popularity": [0.1, 0.15]}, "M")
    assert bars.count("<rect") == 4 + 2  # four bars and two legend swatches
    assert charts.line_chart({"loss": []}, "empty") == ""


def test_render_is_self_contained_and_carries_the_figures():
    result = {
        "components": [{"component": "Pusher", "seconds": 1.0, "state": "COMPLETE"}],
        "pushed": False, "baseline_reason": "nothing is served yet under /s",
        "retrieval_training": {"loss": [2.0, 1.0], "val_recall_at_100": [0.3, 0.4], "epochs_run": 2,
                               "best_epoch": 2, "devices": ["/device:CPU:0"]},
        "evaluation": {"cutoffs": [10], "metrics": {
            "recommender": {"recall@10": 0.1234, "ndcg@10": 0.1, "map@10": 0.05, "hr@10": 0.3,
                            "mrr": 0.2, "users": 5.0},
            "popularity": {"recall@10": 0.2345, "ndcg@10": 0.2, "map@10": 0.1, "hr@10": 0.4,
                           "mrr": 0.3, "users": 5.0}},
            "blessing": {"blessed": False, "reasons": ["recall@10 0.1234 vs popularity 0.2345"],
                         "failures": ["recall@10 0.1234 vs popularity 0.2345"]}},
    }
    page = report.render(result, _stats(0.5, 30.0), None, [], "t")
    assert "0.1234" in page and "0.2345" in page and "Not pushed: recall@10 0.1234 vs popularity" in page
    assert "<svg" in page and not re.search(r"(src|href)=[\"']?https?://", page)


def test_the_stock_evaluator_gates_the_overall_slice_with_ndcg_keyed_by_binarize():
    config = tfma_gate.eval_config(EvalConfig(ndcg_k=10, min_ndcg=0.05, min_auc=0.55,
                                              max_ndcg_drop=0.01))
    spec = config.model_specs[0]
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == (
        "score_examples", candidates.GAIN, "scores")
    ndcg_spec = next(s for s in config.metrics_specs if s.metrics[0].class_name == "NDCG")
    assert ndcg_spec.query_key == candidates.REQUEST
    assert list(ndcg_spec.binarize.top_k_list.values) == [10]
    assert json.loads(ndcg_spec.metrics[0].config) == {"gain_key": candidates.GAIN}
    threshold = ndcg_spec.metrics[0].per_slice_thresholds[0]
    assert [s.ByteSize() for s in threshold.slicing_specs] == [0]  # the overall slice only
    assert threshold.threshold.value_threshold.lower_bound.value == 0.05
    assert threshold.threshold.change_threshold.absolute.value == -0.01
    sliced = {tuple(s.feature_keys) for s in config.slicing_specs}
    assert sliced == {(), ("gender",), ("age_band",), ("occupation",), ("activity",)}
    # Every metric per request: no spec sends TFMA down its per-candidate path.
    assert {s.query_key for s in config.metrics_specs} == {candidates.REQUEST}
    auc = next(m for s in config.metrics_specs for m in s.metrics if m.class_name == "AUC")
    assert auc.per_slice_thresholds[0].threshold.value_threshold.lower_bound.value == 0.55


def test_age_and_activity_bands():
    assert [candidates.age_band(a) for a in (0, 1, 7, 18, 24, 25, 56, 73)] == [
        "unknown", "under 18", "under 18", "18-24", "18-24", "25-34", "55+", "55+"]
    assert [candidates.activity_band(n) for n in (0, 19, 20, 49, 50, 99, 100, 199, 200, 5000)] == [
        "under 20", "under 20", "20-49", "20-49", "50-99", "50-99", "100-199", "100-199", "200+",
        "200+"]


def test_the_report_shows_every_drift_distance_and_flags_the_one_beyond_its_threshold():
    result = {"components": [], "pushed": True, "drift": {"gate": False, "splits": {
        "train": [{"feature": "rating", "comparator": "jensen_shannon_divergence", "distance": 0.6163,
                   "threshold": 0.25},
                  {"feature": "gender", "comparator": "l_infty", "distance": 0.0303, "threshold": 0.25}],
        "eval": [{"feature": "gender", "comparator": "l_infty", "distance": 0.0607, "threshold": 0.25}]}}}
    page = report.render(result, _stats(0.5, 30.0), None, [], "t")
    section = page[page.index("Drift and skew gates"):]
    assert "0.6163" in section and "0.0303" in section and "0.0607" in section
    assert section.count("class='flag'") == 1
    assert "off for this run: --accept-drift" in section and "no request log" in section
    assert "rating 0.6163 (> 0.25, accepted)" in summary.drift_line(result)
    empty = report.render({"components": [], "pushed": True}, _stats(0.5, 30.0), None, [], "t")
    assert "the drift gate had nothing to check" in empty


def test_the_report_and_summary_show_the_serving_skew_of_a_request_log_and_flag_what_is_beyond():
    skew = {"request_log": "gs://b/requests/", "requests": 1200, "rows": [
        {"feature": "gender", "comparator": "l_infty", "distance": 0.567, "threshold": 0.3},
        {"feature": "age", "comparator": "jensen_shannon_divergence", "distance": 0.016, "threshold": 0.1}]}
    result = {"components": [], "pushed": True, "drift": {"gate": False, "splits": {},
                                                          "served_statistics": None, "skew": skew}}
    page = report.render(result, _stats(0.5, 30.0), None, [], "t")
    section = page[page.index("Serving skew"):]
    assert "0.567" in section and "0.016" in section and section.count("class='flag'") == 1
    assert "the drift gate had nothing to check" in page
    line = summary.skew_line(result)
    assert line.startswith("Serving skew (TFDV, 1,200 requests in gs://b/requests/ vs the train split)")
    assert line.index("gender 0.5670 (> 0.3, accepted)") < line.index("age 0.0160 (<= 0.1)")
    assert "\nServing skew (TFDV, 1,200 requests" in summary.render({**result, "wall_seconds": 0})
    assert summary.skew_line({"drift": None}).endswith("(no request log: --request-log)")
    assert summary.drift_line(result) == "Drift: no served data to compare with"
