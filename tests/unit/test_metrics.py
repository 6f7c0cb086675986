"""Level 1: top-K metrics and baselines against hand-computed numbers."""

import math

import numpy as np
import pytest

from models.evaluation import metrics
from models.ranking import ease


def test_user_metrics_hand_computed():
    # Hits at ranks 1 and 3; two relevant items.
    out = metrics.user_metrics(["a", "x", "b", "y"], {"a", "b"}, [2, 4])
    assert out["recall@2"] == pytest.approx(0.5)
    assert out["recall@4"] == pytest.approx(1.0)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert out["ndcg@4"] == pytest.approx(dcg / idcg)
    assert out["ndcg@2"] == pytest.approx(1 / idcg)
    assert out["hr@2"] == 1.0
    assert out["mrr"] == 1.0


def test_map_hand_computed():
    # Hits at ranks 1 and 3 of 4, two relevant: AP@4 = (1/1 + 2/3) / 2; at 2: (1/1) / 2.
    out = metrics.user_metrics(["a", "x", "b", "y"], {"a", "b"}, [2, 4])
    assert out["map@4"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["map@2"] == pytest.approx(0.5)
    # More relevant items than K: divided by K.
    assert metrics.user_metrics(["x", "a"], {"a", "b", "c"}, [2])["map@2"] == pytest.approx(0.5 / 2)


def test_list_qualities_hand_computed():
    genres = {"a": {"Drama"}, "b": {"Drama", "Comedy"}, "c": {"Horror"}}
    counts = {"a": 6, "b": 2}  # c never interacted with: counted once
    out = metrics.list_qualities({"u": ["a", "b", "c"], "v": []}, ["u", "v", "w"], 3, genres, counts)
    # Pairs: a-b Jaccard 1/2 -> 0.5; a-c 0 -> 1; b-c 0 -> 1.
    assert out["diversity@3"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert out["novelty@3"] == pytest.approx(np.mean([-math.log2(6 / 8), -math.log2(2 / 8),
                                                      -math.log2(1 / 8)]))
    # Only users with a list count; a list of one item has no pairs.
    assert metrics.list_qualities({"u": ["a"]}, ["u"], 3, genres, counts)["diversity@3"] == 0.0


def test_user_metrics_no_hit_and_late_hit():
    out = metrics.user_metrics(["x", "y", "a"], {"a"}, [2])
    assert out["recall@2"] == 0.0 and out["hr@2"] == 0.0 and out["ndcg@2"] == 0.0
    assert out["mrr"] == pytest.approx(1 / 3)


def test_mean_metrics_counts_missing_users_as_misses_and_coverage():
    held = {"u1": {"a"}, "u2": {"b"}}
    out = metrics.mean_metrics({"u1": ["a", "c"]}, held, [1], num_items=4)
    assert out["recall@1"] == pytest.approx(0.5)
    assert out["users"] == 2
    assert out["coverage@1"] == pytest.approx(0.25)


def test_popularity_excludes_seen_items():
    ranking = metrics.popularity_ranking(["a", "b", "a", "c", "a", "b"])
    assert ranking == ["a", "b", "c"]
    recs = metrics.popularity_recommendations(ranking, {"u": {"a"}}, ["u", "new"], 2)
    assert recs == {"u": ["b", "c"], "new": ["a", "b"]}


def test_ease_recovers_item_item_cooccurrence():
    # Items 'a' and 'b' always co-occur; 'c' and 'd' co-occur. A user with 'a' should get 'b' first.
    seen = {f"u{i}": {"a", "b"} for i in range(5)} | {f"v{i}": {"c", "d"} for i in range(5)}
    seen["q"] = {"a"}
    recs = metrics.ease_recommendations(seen, ["q"], k=1, l2=1.0)
    assert recs["q"] == ["b"]


def test_ease_dual_form_gives_the_primal_scores():
    """Woodbury's users x users inverse scores exactly as the items x items one, both ways round."""
    rng = np.random.default_rng(1)
    for users, items in ((15, 60), (60, 15)):
        x = (rng.random((users, items)) < 0.2).astype(np.float64)
        primal = metrics.ease_scorer(x, 3.0, dual=False)(x)
        dual = metrics.ease_scorer(x, 3.0, dual=True)(x)
        assert np.allclose(primal, dual, atol=1e-9) and np.abs(primal).max() > 0.1
    # The direct definition: B = I - P / diag(P) with a zero diagonal.
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(items))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    assert np.allclose(metrics.ease_scorer(x, 3.0)(x), x @ b, atol=1e-9)


def test_eases_kept_weights_are_each_items_largest_in_size_of_its_row_of_b_in_both_forms():
    rng = np.random.default_rng(2)
    for users, items in ((40, 25), (25, 40)):  # the items x items inverse, then Woodbury's
        x = (rng.random((users, items)) < 0.25).astype(np.float64)
        p = np.linalg.inv(x.T @ x + 3.0 * np.eye(items))
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        kept = ease.fit(x, 3.0, m=4)
        assert kept.ids.shape == (items, 4)
        for h in range(items):
            largest = np.argsort(-np.abs(b[h]), kind="stable")[:4]
            assert list(kept.ids[h]) == list(largest)
            assert np.allclose(kept.weights[h], b[h, largest], atol=1e-5)
        assert (kept.weights < 0).any() and (kept.weights > 0).any()
        # With every weight kept, the scores are x B.
        full = ease.fit(x, 3.0, m=items)
        assert np.allclose(ease.scores(full, x), x @ b, atol=1e-5)


def test_eases_width_keeps_the_servables_weights_within_their_budget():
    assert [ease.width(n) for n in (5, 1682, 9742, 50_000, 1_000_000)] == [4, 1000, 1000, 200, 100]


def test_eases_matrix_rows_and_the_l2_chosen_on_later_items():
    x, row_users = ease.matrix(np.array(["v", "u", "v", "w"]), np.array([0, 2, 1, -1]), 3)
    assert list(row_users) == ["u", "v"] and x.tolist() == [[0, 0, 1], [1, 1, 0]]
    # Items 2k and 2k + 1 always go together; a user's later item is its item's partner.
    seen = np.zeros((40, 20))
    for u in range(40):
        pair = 2 * (u % 10)
        seen[u, [pair, pair + 1]] = 1.0
    half = np.array(seen)
    half[:10, 1::2] = 0.0  # users 0-9 gave only the first of their pair so far
    l2, tried = ease.choose_l2(half, {u: {2 * u + 1} for u in range(10)}, grid=(1.0, 30.0))
    assert set(tried) == {1.0, 30.0} and tried[l2] == max(tried.values()) == 1.0
    # Scored on the later items given: a partner nobody had is never found first.
    _, tried = ease.choose_l2(half, {u: {(2 * u + 5) % 20} for u in range(10)}, grid=(1.0,))
    assert tried[1.0] < 0.5


def test_ease_never_recommends_seen():
    rng = np.random.default_rng(0)
    items = [str(i) for i in range(30)]
    seen = {f"u{i}": set(rng.choice(items, 8, replace=False)) for i in range(40)}
    recs = metrics.ease_recommendations(seen, list(seen), k=10)
    assert all(not (set(recs[u]) & seen[u]) for u in seen)
