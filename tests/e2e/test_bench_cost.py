"""The cost benchmark: its stock-chain baseline for real (level 4) and its table (level 1)."""

import os
import time

import pytest

from bench import cost, measure
from tests.support import plain_argv


@pytest.mark.e2e
def test_the_stock_chain_runs_pushes_a_servable_model_and_is_measured_per_step(tiny_data, tmp_path):
    import tensorflow as tf

    from bench import stock_chain

    sampler = measure.Sampler()
    sampler.start()
    started = time.time()
    with plain_argv():
        metadata_path = stock_chain.run(tiny_data, str(tmp_path / "stock"))
    sampler.stop()
    steps = {s["component"]: s for s in measure.steps(metadata_path, started, sampler)}
    assert list(steps) == ["CsvExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer",
                           "Pusher"]
    # Real work was measured inside each step: CPU time and the memory of a process holding
    # TensorFlow.
    assert steps["Transform"]["cpu_seconds"] > 1.0 and steps["Trainer"]["peak_rss"] > 300e6
    assert all(s["ended"] >= s["started"] for s in steps.values())
    # The Pusher's version answers serialized interactions through serving_default.
    serving = tmp_path / "stock" / "serving"
    version = os.path.join(serving, sorted(os.listdir(serving))[-1])
    model = tf.saved_model.load(version)
    example = tf.train.Example(features=tf.train.Features(feature={
        "user_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
        "item_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
        "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[888_000_000]))}))
    rating = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))
    assert rating["rating"].shape == (1, 1)


def _run(wall, steps):
    return {"wall": wall, "cpu_seconds": wall * 0.9, "peak_rss": 2e9, "pushed": True,
            "steps": [{"component": name, "seconds": s, "cpu_seconds": s, "peak_rss": 1e9}
                      for name, s in steps]}


def test_the_table_puts_both_chains_side_by_side_with_the_whole_runs_ratio():
    results = [{"size": "15k", "interactions": 14_000, "ratio": 300 / 60,
                "ours": _run(300.0, [("Transform", 40.0), ("RetrievalTrainer", 100.0)]),
                "stock": _run(60.0, [("Transform", 20.0), ("Trainer", 30.0)])},
               {"size": "100k", "interactions": 100_000, "ratio": 400 / 80,
                "ours": _run(400.0, [("Transform", 50.0)]),
                "stock": _run(80.0, [("Transform", 25.0), ("Trainer", 40.0)])}]
    table = cost.table(results)
    ours, stock = table.split("stock TFX chain")
    assert "RetrievalTrainer" in ours and "RetrievalTrainer" not in stock
    retrieval = [line for line in ours.splitlines() if "RetrievalTrainer" in line][0]
    assert retrieval.split()[1:4] == ["100.0", "100.0", "1.00"] and retrieval.split()[4] == "-"
    ratio = [line for line in table.splitlines() if line.strip().startswith("wall ratio")][0]
    assert ratio.split()[-2:] == ["5.00x", "5.00x"]
    assert cost.fixed_costs({"ours": results[0]["ours"]}) == {"Transform": 40.0,
                                                             "RetrievalTrainer": 100.0}
