"""Level 4: the quality benchmark on small data: its main table on the suite's shared run (the
same outer split `make bench-quality` makes), its cold-start table on a run of its own."""

import json
import os

import pytest
import tensorflow as tf

from bench import quality
from models.evaluation import metrics
from pipeline.config import EvalConfig, PipelineConfig
from tests.support import EVAL_REQUESTS, IN_PROCESS, plain_argv

pytestmark = pytest.mark.e2e


def test_every_model_is_scored_on_the_same_later_interactions(shared_run, tmp_path):
    top_k = shared_run.config.top_k
    result = quality.score_run(shared_run.summary, shared_run.dataset, shared_run.given,
                               shared_run.future, top_k, "tiny")
    quality.write(result, str(tmp_path))
    main = json.load(open(tmp_path / "quality.json"))["main"]
    assert set(main) == {"popularity", "ease", "ials", "retrieval_only", "recommender"}
    users = {row["users"] for row in main.values()}
    assert users == {len(shared_run.future)} and len(shared_run.future) > 200
    for row in main.values():
        assert {"recall@10", "recall@50", "recall@100", "ndcg@10", "hr@10", "mrr",
                "coverage@10"} <= set(row)
        assert all(0.0 <= row[k] <= 1.0 for k in row if k not in ("users", "users_served_a_seen_item"))
    # The pushed model knows everything it was given: nobody is served an item they had.
    assert main["recommender"]["users_served_a_seen_item"] == 0
    # The benchmark's figure of the pushed model is the one its lists give, asked directly.
    model = tf.saved_model.load(shared_run.summary["pushed_to"])
    users = sorted(shared_run.future)
    lists = model.signatures["serving_default"](user_id=tf.constant(users))["item_ids"].numpy()
    direct = metrics.mean_metrics({u: [i.decode() for i in row] for u, row in zip(users, lists)},
                                  shared_run.future, [10], len(shared_run.dataset.items))
    assert main["recommender"]["recall@10"] == pytest.approx(direct["recall@10"], abs=1e-9)
    print("bound: " + ", ".join(f"{name} recall@10 {row['recall@10']:.4f}" for name, row in main.items()))
    # Learned models beat popularity; EASE and iALS are real learners, not copies of popularity.
    # Measured (recall@10, popularity 0.1282): EASE 0.2341 and iALS 0.2062 (no seed of ours);
    # the recommender 0.2111 / 0.1614 / 0.1994 at retrieval seeds 7 / 42 / 11 (min 1.26x).
    for name in ("ease", "ials", "recommender"):
        assert main[name]["recall@10"] > 1.2 * main["popularity"]["recall@10"], name
    # The retrieval stage alone: 0.1687 / 0.1581 / 0.1852 at seeds 7 / 42 / 11, at least 1.23x
    # popularity; bound 1.1x.
    assert main["retrieval_only"]["recall@10"] > 1.1 * main["popularity"]["recall@10"]
    # The pipeline's own inner figures are kept beside, for the holdout models.
    assert set(result["pipeline_inner_eval"]) == {"recommender", "retrieval_only", "popularity",
                                                  "ease"}
    assert os.path.getsize(tmp_path / "quality.png") > 10_000


@pytest.fixture(scope="module")
def cold(tiny_data, tmp_path_factory):
    """The cold-start run: a tenth of the users and of the items removed from the data."""
    output = str(tmp_path_factory.mktemp("cold"))
    base = PipelineConfig(serving_dir=os.path.join(output, "serving"), beam_args=IN_PROCESS,
                          evaluation=EvalConfig(requests=EVAL_REQUESTS)).with_lists(50)
    with plain_argv():
        return quality.cold_start(tiny_data, base, output, fraction=0.1, history=5)


def test_cold_start_rows_are_scored_and_a_request_history_helps(cold):
    names = set(cold)
    assert {"cold users, demographics only: model", "cold users, demographics only: popularity",
            "cold users, + first 5 items: model", "cold users, + first 5 items: popularity",
            "cold items: genre popularity"} <= names
    assert any(name.startswith("cold items (") for name in names)
    assert all(row["users"] > 0 for row in cold.values())
    # The request's history personalises: the same cold users' lists improve with 5 items.
    # (Beating popularity on cold users is a claim of the full-size benchmark, README; on
    # these 300 users and 400 items the cold run is too small for it, for retrieval alone
    # as for the recommender: with --cold-fraction 0.3, recall@50 0.377 and 0.351 vs
    # popularity 0.380 on 90 users.)
    # (Measured at 81c9ec6 over retrieval seeds 42 (this fixture's) / 7 / 11: recall@50 0.4318 /
    # 0.4695 / 0.4740 with 5 items, 0.3417 / 0.3830 / 0.4001 without; the smallest gain 0.074.)
    with_history = cold["cold users, + first 5 items: model"]
    without = cold["cold users, demographics only: model"]
    assert with_history["users"] == without["users"]
    print(f"bound: cold users recall@50 {with_history['recall@50']:.4f} with 5 items, "
          f"{without['recall@50']:.4f} without")
    assert with_history["recall@50"] > without["recall@50"]
