"""Level 1: the continuous-training benchmark's cut, windows and averages (bench/continuous.py)."""

import os

import numpy as np
import pytest

from bench import continuous


def test_spans_are_equal_shares_by_time_and_one_second_never_spans_two():
    times = [5, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5]
    span = continuous.cut(times, 3)
    assert np.bincount(span).tolist() == [3, 5, 4]
    for t in set(times):
        assert len({s for s, u in zip(span, times) if u == t}) == 1
    by_time = [s for _, s in sorted(zip(times, span))]
    assert by_time == sorted(by_time)  # later spans hold later interactions


def test_a_window_holds_only_what_had_arrived(tmp_path):
    spans = []
    for k in (1, 2, 3):
        os.makedirs(tmp_path / "spans" / f"span-{k}")
        spans.append(str(tmp_path / "spans" / f"span-{k}"))
    root = continuous.window_root(spans, 2, str(tmp_path / "work"))
    assert sorted(os.listdir(root)) == ["span-1", "span-2"]
    assert os.path.realpath(os.path.join(root, "span-2")) == os.path.realpath(spans[1])


def _step(t, warm_seconds, cold_seconds, warm_ndcg, cold_ndcg, warm=True):
    track = lambda s, n, w: {"seconds": s, "ndcg@10": n, "recall@10": 2 * n, "warm": w,  # noqa: E731
                             "epochs_run": 1, "start": "warm" if w else "nothing served"}
    return {"step": t, "window": f"1..{t}", "users": 10, "warm": track(warm_seconds, warm_ndcg, warm),
            "cold": track(cold_seconds, cold_ndcg, False)}


def test_the_averages_leave_out_the_first_step_which_nothing_could_warm():
    steps = [_step(1, 300, 100, 0.5, 0.1, warm=False), _step(2, 40, 100, 0.20, 0.20),
             _step(3, 60, 100, 0.18, 0.22)]
    means = continuous.averages(steps)
    assert means["steps"] == 2 and means["warm_steps"] == 2
    assert means["wall_ratio"] == 0.5
    assert means["ndcg@10_change"] == pytest.approx(0.19 / 0.21 - 1)
    table = continuous.table(steps, means)
    assert "wall warm / cold 0.50" in table and "NDCG@10 -9.5%" in table
    assert "cold: nothing served" in table.splitlines()[1]


def test_the_components_table_puts_each_steps_mean_warm_beside_cold():
    steps = [_step(1, 300, 100, 0.5, 0.1, warm=False), _step(2, 40, 100, 0.2, 0.2),
             _step(3, 60, 100, 0.2, 0.2)]
    steps[0]["warm"]["components"] = {"RetrievalTrainer": 999.0}  # step 1: left out
    for step, (warm, cold) in zip(steps[1:], ((10.0, 30.0), (20.0, 50.0))):
        step["warm"]["components"] = {"RetrievalTrainer": warm, "Transform": 5.0}
        step["cold"]["components"] = {"RetrievalTrainer": cold, "Transform": 7.0}
    lines = continuous.components_table(steps).splitlines()
    assert lines[1].split() == ["RetrievalTrainer", "15.0s", "40.0s", "-25.0s"]
    assert lines[2].split() == ["Transform", "5.0s", "7.0s", "-2.0s"]
    assert lines[3].split() == ["all", "components", "20.0s", "47.0s", "-27.0s"]
