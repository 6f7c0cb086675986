"""bench/evaluator.py's pure parts: the per-candidate baseline configuration, the comparison
of both configurations' figures and the table."""

from bench import evaluator as bench
from models.evaluation import candidates, tfma_gate
from models.evaluation.config import EvalConfig


def test_the_per_candidate_baseline_moves_only_auc_and_the_count_out_of_the_request():
    config = tfma_gate.eval_config(EvalConfig(min_auc=0.55))
    baseline = bench.per_candidate_config(config)
    by_key = {}
    for spec in baseline.metrics_specs:
        by_key.setdefault(spec.query_key, []).extend(m.class_name for m in spec.metrics)
    assert sorted(by_key) == ["", candidates.REQUEST]
    assert sorted(by_key[""]) == ["AUC", "ExampleCount"]
    assert sorted(by_key[candidates.REQUEST]) == ["MinLabelPosition", "NDCG"]
    # Its thresholds and slices are the pipeline's.
    auc = next(m for s in baseline.metrics_specs for m in s.metrics if m.class_name == "AUC")
    assert auc.per_slice_thresholds[0].threshold.value_threshold.lower_bound.value == 0.55
    assert baseline.slicing_specs == config.slicing_specs
    assert baseline.model_specs == config.model_specs
    # The pipeline's own configuration is untouched.
    assert {s.query_key for s in config.metrics_specs} == {candidates.REQUEST}


def _row(config, baseline, seconds, auc, count):
    slices = {"Overall": {"auc": {"candidate": auc}, "example_count": {"candidate": count}}}
    return {"config": config, "baseline": baseline, "repeat": 0, "seconds": seconds,
            "result": {"slices": slices}}


def test_differences_ignore_the_count_and_see_any_other_figure():
    rows = [_row(bench.PER_CANDIDATE, b, 30.0, 0.65, 15000) for b in (False, True)]
    rows += [_row(bench.PER_REQUEST, b, 15.0, 0.65, 300) for b in (False, True)]
    assert bench.differences(rows) == (0.0, "")
    rows[-1]["result"]["slices"]["Overall"]["auc"]["candidate"] = 0.66
    worst, where = bench.differences(rows)
    assert abs(worst - 0.01) < 1e-12 and where == "auc (candidate) on Overall"
    table = bench.render(rows, bench.differences(rows))
    assert "holdout alone" in table and "0.50x" in table and "1.00e-02" in table
