"""Level 4: the quality benchmark end to end on small data (two real pipeline runs)."""

import json
import os
import sys
from unittest import mock

import pytest

from bench import quality

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def report(tiny_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("bench")
    with mock.patch.object(sys, "argv", [sys.argv[0]]):
        assert quality.main(["--data", tiny_data, "--output", str(output), "--top-k", "50"]) == 0
    with open(output / "quality.json") as f:
        return json.load(f), output


def test_every_model_is_scored_on_the_same_later_interactions(report):
    result, output = report
    main = result["main"]
    assert set(main) == {"popularity", "ease", "ials", "retrieval_only", "recommender"}
    users = {row["users"] for row in main.values()}
    assert len(users) == 1 and users.pop() > 200
    for row in main.values():
        assert {"recall@10", "recall@50", "recall@100", "ndcg@10", "hr@10", "mrr",
                "coverage@10"} <= set(row)
        assert all(0.0 <= row[k] <= 1.0 for k in row if k not in ("users", "users_served_a_seen_item"))
    # The pushed model knows everything it was given: nobody is served an item they had.
    assert main["recommender"]["users_served_a_seen_item"] == 0
    # Learned models beat popularity; EASE and iALS are real learners, not copies of popularity.
    for name in ("ease", "ials", "recommender"):
        assert main[name]["recall@10"] > 1.2 * main["popularity"]["recall@10"], name
    # The retrieval stage alone varies with the training order on 300 users (measured 0.1656 with
    # chronologically written examples, 0.1416 with the Beam ExampleGens' order; popularity
    # 0.1282): it must beat popularity; the whole recommender keeps the 1.2x bound above.
    assert main["retrieval_only"]["recall@10"] > main["popularity"]["recall@10"]
    assert result["baselines"]["ease"]["l2"] in (50, 100, 200, 500, 1000, 2000)
    # The pipeline's own inner figures are kept beside, for the holdout models.
    assert set(result["pipeline_inner_eval"]) == {"recommender", "retrieval_only", "popularity",
                                                  "ease"}
    assert os.path.getsize(output / "quality.png") > 10_000


def test_cold_start_rows_are_scored_and_a_request_history_helps(report):
    result, _ = report
    cold = result["cold_start"]
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
    with_history = cold["cold users, + first 5 items: model"]
    without = cold["cold users, demographics only: model"]
    assert with_history["users"] == without["users"]
    assert with_history["recall@50"] > without["recall@50"]
