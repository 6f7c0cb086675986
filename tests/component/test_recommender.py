"""Level 2: the recommender servable (retrieve -> rank -> re-rank) on a hand-made index.

The ranker is a stand-in with a known preference (the least popular item
first), so every list below is worked out by hand; the trained ranker runs
through the same code in the pipeline tests.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from models.ranking import ease as item_item
from models.ranking import features as ranking_features
from pipeline.config import RerankConfig
from recommender import client, remote
from recommender import servable as recommender
from tests.support import context, ids, make_index

# Items a..e have popularity 1, 9, 3, 7, 5 (tests/component/test_index_servable.py).


class PopularityAverse(tf.Module):
    """Stand-in ranker: the less popular a candidate, the higher its score."""

    @tf.function
    def score(self, inputs):
        return -inputs[ranking_features.SCALARS][..., ranking_features.SCALAR_NAMES.index("log_popularity")]


RULES_OFF = RerankConfig(dislike_similarity=1.0)


def make_recommender(rules=RULES_OFF, disliked=None):
    index = make_index(candidates=4)
    return recommender.Recommender(index, PopularityAverse(), rules, top_k=3, disliked=disliked)


def with_k(request, k):
    return {**request, recommender.K: tf.constant(k, tf.int32)}


def test_the_ranker_reorders_retrieved_candidates_and_retrieve_keeps_retrieval_order():
    model = make_recommender()
    users = tf.constant(["u1", "u2"])
    # u1 saw 'a': retrieval order b, c, d, e; the stand-in ranker prefers c, e, d, b.
    # u2 saw 'e', 'd': three candidates c, b, a; ranked a, c, b.
    assert ids(model.recommend(users)) == [["c", "e", "d"], ["a", "c", "b"]]
    assert ids(model.retrieve(users)) == [["b", "c", "d"], ["c", "b", "a"]]
    # An unknown user gets the popularity list (b, d, e, c by popularity), ranker not applied.
    assert ids(model.recommend(tf.constant(["stranger"]))) == [["b", "d", "e"]]


def test_items_near_a_disliked_one_are_demoted():
    # u1 rated 'c' (position 2) low; with the rule on, 'c' (cosine 1 with itself) goes last.
    model = make_recommender(RerankConfig(dislike_similarity=0.9),
                             disliked=(np.array([0, 1, 1, 1]), np.array([2], np.int32)))
    assert ids(model.recommend(tf.constant(["u1"]))) == [["e", "d", "b"]]


def _with_ease(weight):
    # EASE's kept weights (models/ranking/ease.py): a -> e 1.0 and b 0.5; e -> d 2.0 (u2 saw both);
    # no other item reaches any.
    ids = np.full((5, 2), -1, np.int32)
    weights = np.zeros((5, 2), np.float32)
    ids[0], weights[0] = [4, 1], [1.0, 0.5]
    ids[4, 0], weights[4, 0] = 3, 2.0
    return recommender.Recommender(make_index(candidates=4), PopularityAverse(), RULES_OFF,
                                   top_k=3, ease=item_item.ItemWeights(ids, weights),
                                   ease_weight=weight)


def test_eases_list_is_fused_by_scaled_scores_never_with_seen_or_excluded_items():
    users = tf.constant(["u1", "u2", "stranger"])
    # Weight 0: the ranked lists as they are (the first test's).
    assert ids(_with_ease(0.0).recommend(users)) == [["c", "e", "d"], ["a", "c", "b"], ["b", "d", "e"]]
    model = _with_ease(0.6)
    # u1 (saw a): ranked c, e, d, b, logits -log(1 + popularity) scaled to 1, .557, .245, 0;
    # EASE's scores e 1, b .5, c and d 0 (unreached), scaled the same. Fused, 0.4 x ranked +
    # 0.6 x EASE: e .823, c .4, b .3, d .098.
    # u2 (saw e, d): EASE reaches d only, which u2 saw: the ranked list a, c, b stays.
    # The stranger has nothing to personalise on: the popularity list stays.
    assert ids(model.recommend(users)) == [["e", "c", "b"], ["a", "c", "b"], ["b", "d", "e"]]
    assert json.loads(model.settings.numpy())["ease_weight"] == 0.6
    # The request's exclusions leave EASE's list too: u1 without e is ranked c, d, b (1, .244,
    # 0) and EASE scores b .5, c and d 0: b .6, c .4, d .098.
    out = model.recommend_with_context(with_k(context(["u1"], [[]], exclude=[["e"]]), 3))
    assert ids(out) == [["b", "c", "d"]]
    # A new user's request history is what EASE reads: history a gives the ranked list c, e,
    # d, b (a excluded) and EASE's e, b, as for u1.
    out = model.recommend_with_context(with_k(context(["new"], [["a"]]), 2))
    assert ids(out) == [["e", "c"]]


def test_requests_by_demographics_alone_are_fused_with_the_popularity_list():
    def lists(weight):
        model = recommender.Recommender(make_index(candidates=4), PopularityAverse(), RULES_OFF,
                                        top_k=3, popularity_weight=weight)
        new = model.recommend_with_context(with_k(context(["", ""], [[], []], genders=["F", "F"],
                                                          exclude=[[], ["b"]]), 3))
        return ids(new), ids(model.recommend(tf.constant(["u1"])))
    # Weight 0: the ranked list (query 3 x axis d: retrieval d, then a, b, c, or a, c, e
    # without b; ranked by the stand-in a, c, d and a, c, e).
    assert lists(0.0) == ([["a", "c", "d"], ["a", "c", "e"]], [["c", "e", "d"]])
    # Weight 0.9 on popularity's list (b, d, e, c: log(1 + 9, 7, 5, 3)), 0.1 on the ranked one
    # (a, c, d, b scaled 1, .569, .139, 0); popularity scaled over both lists' items: b 1,
    # d .861, e .683, c .430, a 0. Fused: b .9, d .789, e .615, c .444, a .1. Without b:
    # ranked a, c, e, d (1, .5, .208, 0), popularity d 1, e .792, c .5, a 0: d .9, e .734,
    # c .5, a .1. A known user's list is not touched.
    assert lists(0.9) == ([["b", "d", "e"], ["d", "e", "c"]], [["c", "e", "d"]])


def test_lists_by_weight_are_serving_defaults_lists_at_each_weight():
    # The assembly chooses the weights with lists_by_weight (one retrieval and ranking, the
    # fusion per weight); each of its lists must be what serving_default serves at that weight.
    from models.index.contract import Retrieved

    model = _with_ease(0.0)
    users = tf.constant(["u1", "u2", "stranger"])
    pairs = [(0.0, 0.0), (0.6, 0.0), (0.9, 0.0)]
    found = Retrieved.of(model.index.retrieve_positions(users))
    trials = model.lists_by_weight(found, model.index.lookup_users(users),
                                   tf.constant(pairs, tf.float32)).numpy()
    served = []
    for ease_weight, popularity_weight in pairs:
        model.set_weights(ease_weight, popularity_weight)
        served.append(ids(model.recommend(users)))
    assert [[[i.decode() for i in row] for row in trial] for trial in trials] == served
    # At 0.6 and 0.9 EASE changes u1's list (the fusion test's figures), so the trials differ.
    assert served[0] != served[1]


def test_request_context_exclusions_k_and_unknown_items():
    model = make_recommender()
    request = context(["u1", "new"], [["zzz"], ["b"]], exclude=[["e", "yyy"], []])
    out = model.recommend_with_context(with_k(request, 2))
    # u1: 'e' excluded by the request; 'new' has history 'b' only (query: axis of 'c').
    assert [len(row) for row in ids(out)] == [2, 2]
    assert "e" not in ids(out)[0] and "b" not in ids(out)[1]
    # Ids outside the catalogue are counted, not silently dropped.
    assert list(out["unknown_items"].numpy()) == [2, 0]
    # k = 0: the model's default length.
    assert out["item_ids"].shape[1] == 2
    assert model.recommend_with_context(with_k(request, 0))["item_ids"].shape[1] == 3


def _whole_catalogue_lists(model, users, exclude, k):
    """(ids, scores, counts) of recommend_with_context at k for users with no request history."""
    out = model.recommend_with_context(with_k(context(users, [[] for _ in users], exclude=exclude), k))
    return ids(out), out["scores"].numpy(), out["count"].numpy().tolist()


@pytest.mark.parametrize("rules", [RULES_OFF, RerankConfig(diversity=0.5, freshness_boost=0.2)],
                         ids=["top-k", "mmr"])
def test_a_list_longer_than_what_remains_is_short_and_never_holds_seen_or_excluded_items(rules):
    # k equal to the catalogue (5 items, candidates 5): u1 saw 'a', u2 saw 'e' and 'd'; the
    # anonymous user "" has seen nothing. Exclusions leave fewer than k items for every row.
    model = recommender.Recommender(make_index(candidates=5), PopularityAverse(), rules, top_k=5)
    users = ["u1", "u2", "", ""]
    exclude = [["b", "c", "d"], [], ["a", "b", "c", "d"], list("abcde")]
    got, scores, counts = _whole_catalogue_lists(model, users, exclude, 5)
    assert counts == [1, 3, 1, 0]
    assert [row[:n] for row, n in zip(got, counts)] == [["e"], sorted(["a", "b", "c"], key=lambda
                                                       i: got[1].index(i)), ["e"], []]
    assert sorted(got[1][:3]) == ["a", "b", "c"]
    for row, n, score in zip(got, counts, scores):
        assert row[n:] == [""] * (5 - n) and np.all(score[n:] == 0.0)
    assert np.all(np.isfinite(scores))
    # The same rule in serving_default and retrieve (u2: three items remain of five).
    for out in (model.recommend(tf.constant(["u1", "u2"])), model.retrieve(tf.constant(["u1", "u2"]))):
        assert out["count"].numpy().tolist() == [4, 3]
        assert ids(out)[1][3:] == ["", ""] and "a" not in ids(out)[0] and "e" not in ids(out)[1]
        assert np.all(np.isfinite(out["scores"].numpy()))


def test_the_clients_return_a_short_list_as_short():
    # TF Serving's answer for a row with 2 of k = 4 left: REST sends lists of str, gRPC's
    # make_ndarray(...).tolist() lists of bytes; both return the first `count` items.
    class Answer:
        def __init__(self, text):
            self.text = text

        def predict(self, signature, inputs):
            if signature == "lookup_titles":
                return {"titles": [self.text(f"T {i}") for i in inputs["item_ids"]]}
            return {"item_ids": [[self.text(i) for i in ["c", "b", "", ""]]],
                    "scores": [[0.9, 0.5, 0.0, 0.0]], "count": [2], "unknown_items": [0]}

    for text in (str, str.encode):
        found = remote.recommend(Answer(text), "u1", exclude=["a"], k=4)
        assert found == [("c", "T c", 0.9), ("b", "T b", 0.5)]

    class Nothing(Answer):  # every item seen or excluded: count 0, no titles asked for
        def predict(self, signature, inputs):
            assert signature != "lookup_titles"
            return {"item_ids": [["", ""]], "scores": [[0.0, 0.0]], "count": [0],
                    "unknown_items": [1]}

    found = remote.recommend(Nothing(str), "u1", exclude=["zzz"], k=2)
    assert found == [] and found.unknown_items == 1


@pytest.mark.parametrize("k", [-1, 5, 10**9])
def test_k_out_of_range_is_a_clear_error(k):
    model = make_recommender()
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be"):
        model.recommend_with_context(with_k(context(["u1"], [[]]), k))


def test_empty_user_id_is_a_clear_error():
    model = make_recommender()
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_id must not be empty"):
        model.recommend(tf.constant(["u1", ""]))


def test_rank_scores_given_items_and_marks_unknown_ones():
    model = make_recommender()
    scores = model.rank(tf.constant(["u1"]), tf.constant([["b", "c", "zzz"]]))["scores"].numpy()
    np.testing.assert_allclose(scores[0][:2], -np.log1p([9.0, 3.0]), rtol=1e-6)
    assert np.isneginf(scores[0][2])


def _score_example(user, item):
    feature = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))  # noqa: E731
    return tf.train.Example(features=tf.train.Features(feature={
        "user_id": feature(user), "item_id": feature(item)})).SerializeToString()


def test_score_examples_of_a_mixed_batch_equal_each_example_scored_alone():
    # score_examples makes each user's list once per batch (TFMA sends a request's candidates
    # together); interleaved users, a repeated pair and an unknown user must score as alone.
    model = make_recommender()
    pairs = [("u1", "c"), ("u2", "b"), ("u1", "e"), ("nobody", "b"), ("u2", "c"), ("u1", "c"),
             ("u2", "zzz")]
    batch = model.score_examples(tf.constant([_score_example(u, i) for u, i in pairs]))["scores"]
    alone = [float(model.score_examples(tf.constant([_score_example(u, i)]))["scores"][0])
             for u, i in pairs]
    assert batch.numpy().tolist() == alone
    # u1's list starts c, e (max_k 4): 1 - position / 4; zzz is in no list.
    assert alone[0] == 1.0 and alone[2] == 0.75 and alone[5] == 1.0 and alone[6] == 0.0


@pytest.mark.slow
def test_saved_recommender_answers_every_signature_in_a_fresh_process(tmp_path):
    model = make_recommender()
    recommender.save(model, str(tmp_path / "1"))
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        model = tf.saved_model.load({str(tmp_path / "1")!r})
        s = model.signatures
        print(sorted(s))
        print(s["serving_default"](user_id=tf.constant(["u1"]))["item_ids"].numpy().tolist())
        print(s["retrieve"](user_id=tf.constant(["u1"]))["item_ids"].numpy().tolist())
        out = s["recommend_with_context"](
            user_id=tf.constant([""]), age=tf.constant([0], tf.int64), gender=tf.constant([""]),
            occupation=tf.constant([""]), history=tf.constant([["b"]]),
            exclude=tf.constant([["zzz"]]), k=tf.constant(2))
        print(out["item_ids"].numpy().tolist(), out["unknown_items"].numpy().tolist())
        print(s["rank"](user_id=tf.constant(["u1"]), item_ids=tf.constant([["b", "c"]]))[
            "scores"].numpy().shape)
        print(s["lookup_titles"](item_ids=tf.constant(["c"]))["titles"].numpy().tolist())
        try:
            s["serving_default"](user_id=tf.constant([7], tf.int64))
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
            print("wrong dtype refused:", type(e).__name__)
        def example(user, item):
            f = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
            return tf.train.Example(features=tf.train.Features(feature={{
                "user_id": f(user), "item_id": f(item)}})).SerializeToString()
        scores = s["score_examples"](examples=tf.constant(
            [example("u1", i) for i in ("c", "e", "d", "b")]))["scores"].numpy()
        print([round(float(v), 4) for v in scores])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == str(sorted(["serving_default", "recommend_with_context", "retrieve", "rank",
                                   "lookup_titles", "score_examples"]))
    assert lines[1] == "[[b'c', b'e', b'd']]" and lines[2] == "[[b'b', b'c', b'd']]"
    assert lines[3].endswith("[1]") and "b'b'" not in lines[3]
    assert lines[4] == "(1, 2)" and lines[5] == "[b'T c']"
    assert lines[6].startswith("wrong dtype refused")
    # The stock Evaluator's signature: 1 - position / max_k (4) in u1's final list, whose first
    # three are serving_default's c, e, d; b comes after them.
    scores = [float(v) for v in lines[7].strip("[]").split(", ")]
    assert scores[:3] == [1.0, 0.75, 0.5] and scores[3] < 0.5
    # The local client turns the model's refusal into one clear line.
    with pytest.raises(ValueError, match="rejected the request.*k must be <= 4"):
        client.recommend(str(tmp_path / "1"), "u1", k=50)
