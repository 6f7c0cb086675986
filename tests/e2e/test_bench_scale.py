"""The scale benchmark: one real run of a small size in a fresh process (level 4), and its
side-by-side table and the generator's sizes (level 1)."""

import json

import pytest
from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from bench import scale


def test_shapes_follow_movielens():
    assert scale.shape("1m") == (1_000_209, 6040, 3706)
    n, users, items = scale.shape("30k")
    assert n == 30_000 and users == 181 and items == 200


@pytest.mark.e2e
def test_bench_scale_measures_each_step_of_a_real_run(tmp_path, capsys):
    # One real size: what a size's run measures does not depend on how many sizes there are;
    # the side-by-side table and its growth ratios are checked on given figures below.
    assert scale.main(["--sizes", "4k", "--epochs", "1", "--output", str(tmp_path),
                       "--beam-arg=--direct_running_mode=in_memory",
                       "--beam-arg=--direct_num_workers=1"]) == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "scale.json") as f:
        results = json.load(f)
    assert [r["size"] for r in results] == ["4k"]
    r = results[0]
    steps = {s["component"]: s for s in r["steps"]}
    assert {"InteractionsExampleGen", "Transform", "RetrievalTrainer", "Pusher"} <= set(steps)
    # Memory was sampled while each real step ran: at least the interpreter with TensorFlow.
    assert all(s["peak_rss"] > 200e6 for name, s in steps.items() if s["seconds"] > 1)
    # Against the run's own ML Metadata, read here: each step as long as one of its
    # executions, and the whole run inside the fresh process that made it.
    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(
        str(tmp_path / "run-4k" / "out" / "metadata.sqlite")))
    stored = [(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000
              for e in store.get_executions()]
    assert len(stored) >= len(r["steps"])
    assert all(any(abs(s["seconds"] - x) <= 0.051 for x in stored) for s in r["steps"])  # 0.1 s
    assert r["wall"] < r["process_seconds"]
    # The generator draws without repeats, so small sizes hold somewhat fewer than asked
    # (measured: 3,898 for 4k).
    assert 3_000 < r["interactions"] <= 4_000
    table = printed[printed.index("component"):]
    assert "Transform" in table and "whole run (wall)" in table and "interactions" in table


def _result(size, wall, interactions, seconds):
    return {"size": size, "wall": wall, "peak_rss": 2e9, "interactions": interactions,
            "steps": [{"component": c, "seconds": t, "peak_rss": 1.5e9} for c, t in seconds.items()]}


def test_the_table_puts_sizes_side_by_side_with_each_steps_growth():
    small = _result("4k", 100.0, 4_000, {"Transform": 10.0, "Pusher": 0.2})
    large = _result("8k", 150.0, 8_000, {"Transform": 30.0, "Pusher": 0.3, "Evaluator": 5.0})
    lines = scale.table([small, large]).splitlines()
    assert lines[0].split() == ["component", "4k", "s", "GB", "8k", "s", "GB", "x4k->8k"]
    rows = {line[:24].strip(): line[24:].split() for line in lines[1:]}
    assert rows["Transform"] == ["10.0", "1.50", "30.0", "1.50", "3.0x"]
    assert rows["Pusher"] == ["0.2", "1.50", "0.3", "1.50", "-"]  # under 1 s: no ratio
    assert rows["Evaluator"] == ["-", "5.0", "1.50", "-"]  # only in the larger run
    assert rows["whole run (wall)"] == ["100.0", "2.00", "150.0", "2.00", "1.5x"]
    assert rows["interactions"] == ["4,000", "8,000", "2.0x"]
    assert list(rows) == ["Transform", "Pusher", "Evaluator", "whole run (wall)", "interactions"]


def test_each_size_of_the_generator_holds_more_interactions_than_the_one_before(tmp_path):
    from models.data import synthetic

    counts = []
    for size in ("4k", "8k"):
        n, users, items = scale.shape(size)
        folder = synthetic.write_canonical(str(tmp_path / size), num_users=users, num_items=items,
                                           num_interactions=n, seed=7)
        with open(f"{folder}/interactions.csv") as f:
            counts.append(sum(1 for _ in f) - 1)
    # Drawn without repeats: somewhat fewer than asked (measured 3,898 and 5,739).
    assert counts[1] > 1.3 * counts[0] > 3_000
