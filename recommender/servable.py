"""The recommender servable: one request in, one finished list out.

retrieve (the index servable) -> rank (the ranking model) -> fuse with EASE's
list (models/ranking/ease.py, where it was fitted) -> re-rank (rules,
recommender/rerank.py). Signatures:
  serving_default(user_id [batch] string) -> item_ids [batch, K] string,
    scores [batch, K] float, count [batch] int32: the configured K, for users
    known or not
  recommend_with_context(user_id, age, gender, occupation [batch], history
    [batch, n] item ids oldest first, exclude [batch, m] item ids, both padded
    with "", k int32 scalar, 0 for the default K) -> item_ids, scores [batch, k] and unknown_items
    int32 [batch] (request ids outside the catalogue), count; "" / 0 mean not given.
    A brand-new user with a history or demographics gets a personal list.
  retrieve(user_id) -> item_ids, scores, count: the retrieval stage's own top
    K, for comparison and debugging
Every list is best first and never holds an item the user interacted with, an
item of the request's history or exclusions, or a -inf score. When fewer than k
items remain (a catalogue nearly all seen or excluded), a row's first
``count`` entries are its list and the rest are padding: item id "" and score
0 (a batch is one [batch, k] tensor, so rows cannot differ in length). The
clients (recommender/remote.py) and ``recsys recommend`` return the first
``count`` items.
  rank(user_id [batch], item_ids [batch, n]) -> scores [batch, n]: the ranker's
    scores of the given items as a candidate list in that order (-inf for ids
    outside the catalogue), for debugging
  lookup_titles(item_ids [n]) -> titles [n]
  score_examples(examples [batch] serialized tf.Example with user_id and
    item_id) -> scores [batch] float in [0, 1]: 1 - position / max_k of the item
    in the user's final list of max_k items, 0 where it is not in the list (the
    stock Evaluator's model signature: TFMA scores one example per (request,
    candidate), models/evaluation/candidates.py)
A request with nothing to personalise on gets the index's popularity list
(re-ranking rules still apply). Bad requests (an empty user id in
serving_default, k outside [0, max_k]) are answered with an INVALID_ARGUMENT
error naming the input; TF Serving itself rejects inputs of the wrong dtype.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from models import features, records
from models.index import contract
from models.index.contract import Retrieved
from models.index.servable import CONTEXT_SIGNATURE
from models.ranking import ease as item_item
from models.ranking import lists
from models.ranking import neighbours as item_neighbours
from models.ranking.features import age_days, freshness, list_features
from recommender import rerank, signatures
from recommender.config import RerankConfig

USER_ID_SPEC = tf.TensorSpec([None], tf.string, name="user_id")
K = "k"
COUNT = "count"
PAD_ID = ""
RECOMMEND_CONTEXT_SIGNATURE = {**CONTEXT_SIGNATURE, K: tf.TensorSpec([], tf.int32, name=K)}
RANK_SIGNATURE = [USER_ID_SPEC, tf.TensorSpec([None, None], tf.string, name="item_ids")]
EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")
SCORE_EXAMPLES = "score_examples"
# What score_examples reads of each example.
_EXAMPLE_FEATURES = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
                     features.ITEM_ID: tf.io.FixedLenFeature([], tf.string)}


class Recommender(tf.Module):
    """Chains a loaded index servable, a trained ranker and the re-ranking rules.

    Args:
      index: the loaded retrieval servable (models/index/contract.py).
      ranker: a trained ranker with a ``score(list_features) -> logits [b, c]``
        function (models/ranking/export.py; None: retrieval's order).
      rules: a RerankConfig.
      top_k: list length of serving_default.
      first_seen: int64 [n_items], each item's first training interaction time
        (None: all items equally old).
      disliked: (row_splits, positions) per index user row (rerank.disliked;
        None: no dislikes).
      use_ranker: False serves retrieval's own order (the ranking trainer
        decides, from held-out NDCG).
      neighbours: each item's nearest items by co-interactions, a
        ``ranking.neighbours.Neighbours`` (None: none).
      trend: each item's interactions over time, a ``ranking.lists.Trend``
        (None: none).
      ease: EASE's item-to-item weights, a ``models.ranking.ease.ItemWeights`` (None: none).
      ease_weight: EASE's list's share of the fused list, in [0, 1) (0: the
        model's list alone; every item of the model's list stays in it).
      popularity_weight: the popularity list's share of the fused list for
        requests with no known user and no history (demographics only, where
        EASE has nothing to read), in [0, 1).
    """

    def __init__(self, index, ranker, rules, top_k: int, first_seen=None, disliked=None,
                 use_ranker: bool = True, neighbours=None, trend=None, ease=None,
                 ease_weight: float = 0.0, popularity_weight: float = 0.0):
        super().__init__()
        self.index = index
        self.ranker = ranker
        self.rules = rules
        self.top_k = int(top_k)
        self.max_k = max(min(int(rules.max_k), contract.candidates_of(index)), self.top_k)
        self.use_ranker = bool(use_ranker and ranker is not None)
        n_items, n_rows = int(index.item_embeddings.shape[0]), contract.users_of(index) + 1
        if first_seen is None:
            first_seen = np.zeros(n_items, np.int64)
        if disliked is None:
            disliked = (np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int32))
        # What this model applies, readable from the SavedModel (JSON).
        self.settings = tf.Variable("", trainable=False)
        ease = ease if ease is not None else item_item.none(n_items)
        self.ease_ids = tf.Variable(np.asarray(ease.ids, np.int32), trainable=False)
        self.ease_weights = tf.Variable(np.asarray(ease.weights, np.float32), trainable=False)
        self.ease_weight = tf.Variable(0.0, trainable=False)
        self.popularity_weight = tf.Variable(0.0, trainable=False)
        self.set_weights(ease_weight, popularity_weight)
        self.first_seen = tf.Variable(np.asarray(first_seen, np.int64), trainable=False)
        neighbours = neighbours if neighbours is not None else item_neighbours.none(n_items)
        self.neighbour_ids = tf.Variable(np.asarray(neighbours.ids, np.int32), trainable=False)
        self.neighbour_cooccurrences = tf.Variable(np.asarray(neighbours.cooccurrences, np.float32),
                                                   trainable=False)
        self.neighbour_counts = tf.Variable(np.asarray(neighbours.counts, np.float32),
                                            trainable=False)
        trend = trend if trend is not None else lists.no_trend(n_items)
        self.trend_cumulative = tf.Variable(np.asarray(trend.cumulative, np.float32), trainable=False)
        self.trend_start = tf.Variable(np.int64(trend.start), trainable=False)
        self.trend_width = tf.Variable(np.int64(trend.width), trainable=False)
        self.trend_window = tf.Variable(np.int32(trend.window), trainable=False)
        self.disliked_splits = tf.Variable(np.asarray(disliked[0], np.int64), trainable=False)
        self.disliked_items = tf.Variable(np.asarray(disliked[1], np.int32), trainable=False)
        # The finished lists of retrieved candidates: one function that serving_default,
        # recommend_with_context and score_examples call, so that the SavedModel holds (and its
        # save traces, its load restores) the ranking, fusion and rules once, not once each.
        self.finish = tf.function(self._rerank, autograph=False, input_signature=[
            Retrieved.spec(int(index.item_embeddings.shape[1])), tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([None, None], tf.int64)])

    def set_weights(self, ease_weight: float, popularity_weight: float) -> None:
        """Sets the second list's share of the fused list, EASE's and popularity's (the assembly
        tries several on held-out data)."""
        self.ease_weight.assign(float(ease_weight))
        self.popularity_weight.assign(float(popularity_weight))
        self.settings.assign(json.dumps({
            "top_k": self.top_k, "max_k": self.max_k, "use_ranker": self.use_ranker,
            "ease_weight": float(ease_weight), "popularity_weight": float(popularity_weight),
            "rules": dataclasses.asdict(self.rules)}))

    # --- stages ---

    def _ranked(self, found, first_seen):
        """Ranker scores of personal lists; retrieval's scores elsewhere; -inf kept.

        ``first_seen``: int64 [b, c], the candidates' first interaction times."""
        scores = found.scores
        if not self.use_ranker:
            return scores
        positions = found.positions
        logits = self.ranker.score(list_features(
            found.query, self.index.item_embeddings, positions, scores,
            tf.gather(self.index.popularity, positions), first_seen,
            found.history, found.time,
            (self.neighbour_ids, self.neighbour_cooccurrences, self.neighbour_counts),
            (self.trend_cumulative, self.trend_start, self.trend_width, self.trend_window)))
        ranked = tf.where(found.personal[:, None], logits, scores)
        return tf.where(tf.math.is_finite(scores), ranked, -np.inf)

    def _second_list(self, rows, history, excluded, width, candidates, with_ease):
        """The list fused with the ranked one: (positions [b, width], scores [b, width], -inf:
        none; the same scores of ``candidates`` [b, c], the ranked list's items; whether the
        request has items [b], so that the list is EASE's).

        EASE's top items by its scores of each request's items (its user's training items and
        its history, each once), never those items, ``excluded`` (int [b, m], -1 pads) or items
        no weight reaches; for a request with no such item, the popularity list (log training
        interactions) without ``excluded``. EASE's scores are the only catalogue-wide array,
        computed only when ``with_ease`` (a bool tensor: EASE's weight > 0)."""
        seen = tf.gather(tf.RaggedTensor.from_row_splits(self.index.seen_items,
                                                         self.index.seen_row_splits), rows)
        given = tf.concat([tf.cast(seen, tf.int64),
                           tf.ragged.boolean_mask(tf.cast(history, tf.int64), history >= 0)], axis=1)
        has_items = given.row_lengths() > 0
        batch = tf.shape(history, out_type=tf.int64)[0]
        excluded = tf.cast(excluded, tf.int64)
        # Popularity's list: deep enough to leave out every exclusion.
        depth = tf.minimum(tf.shape(self.index.popular_positions)[0],
                           width + tf.shape(excluded)[1])
        popular = tf.cast(self.index.popular_positions[:depth], tf.int64)
        out = tf.reduce_any(popular[None, :, None] == excluded[:, None, :], axis=2)
        popular_scores, order = tf.math.top_k(
            tf.where(out, -np.inf, tf.broadcast_to(self.index.popular_scores[:depth][None, :],
                                                   tf.shape(out))), k=width)
        popular = tf.gather(tf.broadcast_to(popular[None, :], tf.shape(out)), order, batch_dims=1)
        candidates_popular = tf.gather(tf.math.log1p(self.index.popularity), candidates)

        def ease_list():
            n_items = tf.shape(self.ease_ids, out_type=tf.int64)[0]
            where = tf.stack([given.value_rowids(), given.flat_values], axis=1)  # [t, 2]
            shape = tf.stack([batch, n_items])
            counts = tf.scatter_nd(where, tf.ones_like(given.flat_values, tf.float32), shape)
            once = 1.0 / tf.gather_nd(counts, where)  # an item given twice counts once
            # Each given item adds its weights to its row: one flat segment sum over the
            # batch's rows of n_items + 1 (the last column takes the -1 pads, weight 0).
            ids = tf.cast(tf.gather(self.ease_ids, given.flat_values), tf.int64)  # [t, m]
            weights = tf.gather(self.ease_weights, given.flat_values) * once[:, None]
            columns = tf.where(ids >= 0, ids, n_items)
            segments = given.value_rowids()[:, None] * (n_items + 1) + columns
            scores = tf.reshape(tf.math.unsorted_segment_sum(
                tf.reshape(weights, [-1]), tf.reshape(segments, [-1]), batch * (n_items + 1)),
                [batch, n_items + 1])[:, :-1]
            drop = excluded >= 0
            dropped = tf.scatter_nd(
                tf.stack([tf.broadcast_to(tf.range(batch)[:, None], tf.shape(excluded))[drop],
                          excluded[drop]], axis=1),
                tf.ones([tf.reduce_sum(tf.cast(drop, tf.int32))], tf.float32), shape)
            allowed = tf.where((counts == 0) & (dropped == 0), scores, -np.inf)
            # An item no weight reaches scores 0 (weights summing to exactly 0 are as none):
            # not listed, but scored 0 where the ranked list holds it.
            top, positions = tf.math.top_k(tf.where(tf.not_equal(scores, 0.0), allowed, -np.inf),
                                           k=width)
            return (tf.cast(positions, tf.int64), top,
                    tf.gather(allowed, candidates, batch_dims=1))

        ease_positions, ease_scores, candidates_ease = tf.cond(
            with_ease, ease_list,
            lambda: (popular, tf.fill(tf.shape(popular_scores), -np.inf),
                     tf.fill(tf.shape(candidates), -np.inf)))
        mine = has_items[:, None]
        return (tf.where(mine, ease_positions, popular), tf.where(mine, ease_scores, popular_scores),
                tf.where(mine, candidates_ease, candidates_popular), has_items)

    @staticmethod
    def _sorted(found, ranked):
        """The ranked list, best first: (positions int64 [b, c], scores [b, c])."""
        scores, order = tf.math.top_k(ranked, k=tf.shape(ranked)[1])
        return tf.cast(tf.gather(found.positions, order, batch_dims=1), tf.int64), scores

    @staticmethod
    def _fused(personal, positions, scores, second, weights):
        """The model's list (``positions`` scored ``scores``, best first) fused with the second
        list (``_second_list``: EASE's, or popularity's for a request with no items): each item
        of either list scores w x its second score + (1 - w) x its ranked score, both min-max
        scaled to [0, 1] over the lists (an item missing from the ranked list: 0), w the second
        list's weight, ``weights``: (EASE's, popularity's) (CombSUM; Fox and Shaw, TREC 1994).
        A second list at weight 0 adds no item. Returns (positions, scores) [b, c], best
        first, -inf: none. Lists that are not personal (popularity) are left as they are; with
        both weights 0 nothing is computed."""
        second_positions, second_scores, at_mine, has_items = second
        width = tf.shape(scores)[1]

        def fuse():
            weight = tf.where(has_items, weights[0], weights[1])[:, None]
            listed = tf.math.is_finite(scores)
            # An item in both lists is the ranked list's entry, its second score gathered.
            both = ((positions[:, :, None] == second_positions[:, None, :]) & listed[:, :, None])
            theirs_listed = (tf.math.is_finite(second_scores) & ~tf.reduce_any(both, axis=1)
                             & (weight > 0))
            seconds = rerank.relevance(tf.concat([tf.where(listed, at_mine, -np.inf), second_scores], 1))
            mine = (1.0 - weight) * rerank.relevance(scores) + weight * tf.where(
                tf.math.is_finite(seconds[:, :width]), seconds[:, :width], 0.0)
            theirs = weight * seconds[:, width:]
            fused = tf.concat([tf.where(listed, mine, -np.inf),
                               tf.where(theirs_listed, theirs, -np.inf)], axis=1)
            top, at = tf.math.top_k(fused, k=width)
            top_positions = tf.gather(tf.concat([positions, second_positions], axis=1), at,
                                      batch_dims=1)
            return (tf.where(personal[:, None], top_positions, positions),
                    tf.where(personal[:, None], top, scores))

        return tf.cond((weights[0] > 0) | (weights[1] > 0), fuse, lambda: (positions, scores))

    def _rerank(self, found, rows, k, excluded):
        """The served lists (``_listed``) of ``k`` items of the ``found`` candidates for index
        user ``rows``, never an item of ``excluded`` (catalogue positions [b, m], -1 pads)."""
        positions, scores = self._sorted(
            found, self._ranked(found, tf.gather(self.first_seen, found.positions)))
        weights = (self.ease_weight, self.popularity_weight)
        second = tf.cond(
            (weights[0] > 0) | (weights[1] > 0),
            lambda: self._second_list(rows, found.history, excluded, tf.shape(scores)[1],
                                      positions, weights[0] > 0),
            lambda: _no_second_list(positions, scores))
        positions, scores = self._fused(found.personal, positions, scores, second, weights)
        return self._ruled(found, positions, scores, rows, k)

    def lists_by_weight(self, found, rows, weights):
        """serving_default's item ids [w, b, top_k] for each pair (EASE's weight, popularity's)
        of ``weights`` [w, 2] in place of the model's own: retrieval, ranking and the second
        list once, the fusion and the rules once per pair (how the assembly chooses them)."""
        positions, scores = self._sorted(
            found, self._ranked(found, tf.gather(self.first_seen, found.positions)))
        second = self._second_list(rows, found.history, _no_exclusions(rows), tf.shape(scores)[1],
                                   positions, tf.reduce_any(weights[:, 0] > 0))

        def one(w):
            fused_positions, fused = self._fused(found.personal, positions, scores, second,
                                                 (w[0], w[1]))
            return self._ruled(found, fused_positions, fused, rows, self.top_k)["item_ids"]

        return tf.map_fn(one, weights, fn_output_signature=tf.string)

    def _ruled(self, found, positions, ranked, rows, k):
        """The served list of ``positions`` scored ``ranked`` (best first): the rules applied."""
        items = tf.math.l2_normalize(tf.gather(self.index.item_embeddings, positions), axis=-1)
        first_seen = tf.gather(self.first_seen, positions)
        fresh = freshness(age_days(found.time, first_seen))
        disliked = tf.gather(tf.RaggedTensor.from_row_splits(self.disliked_items,
                                                             self.disliked_splits), rows)
        disliked = tf.ragged.map_flat_values(
            lambda p: tf.math.l2_normalize(tf.gather(self.index.item_embeddings, p), axis=-1),
            disliked)
        order, scores = rerank.apply(ranked, items, fresh, disliked, k, self.rules)
        top = tf.gather(positions, order, batch_dims=1)
        return _listed(tf.gather(self.index.item_ids, top), scores)

    def _list_length(self, k):
        """The requested length: k, or the default K for k = 0; k < 0 or > max_k is an error."""
        checks = [
            tf.debugging.assert_greater_equal(
                k, 0, message="k must be >= 0 (the list length; 0: the model's default)"),
            tf.debugging.assert_less_equal(
                k, self.max_k,
                message=f"k must be <= {self.max_k}, the longest list this model serves"),
        ]
        # Everything downstream waits for the checks, so a bad k fails with their message
        # and never with whatever op would choke on it first.
        with tf.control_dependencies(checks):
            return tf.where(k > 0, k, self.top_k)

    # --- signatures ---

    @tf.function(input_signature=[USER_ID_SPEC], autograph=False)
    def recommend(self, user_id):
        check = tf.debugging.assert_greater(
            tf.strings.length(user_id), 0,
            message="user_id must not be empty; for a user without an id, call "
                    "recommend_with_context with a history or demographics")
        with tf.control_dependencies([check]):
            user_id = tf.identity(user_id)
        found = Retrieved.of(self.index.retrieve_positions(user_id))
        rows = self.index.lookup_users(user_id)
        return _fixed(self.finish(found, rows, tf.constant(self.top_k), _no_exclusions(rows)),
                      self.top_k)

    @tf.function(input_signature=[RECOMMEND_CONTEXT_SIGNATURE], autograph=False)
    def recommend_with_context(self, context):
        k = self._list_length(context[K])
        found = Retrieved.of(self.index.retrieve_positions_with_context(
            {key: context[key] for key in CONTEXT_SIGNATURE}))
        exclude = context["exclude"]
        excluded = tf.reshape(self.index.lookup_items(tf.reshape(exclude, [-1])), tf.shape(exclude))
        out = self.finish(found, self.index.lookup_users(context["user_id"]), k, excluded)
        out["unknown_items"] = found.unknown
        return out

    @tf.function(input_signature=[USER_ID_SPEC], autograph=False)
    def retrieve(self, user_id):
        found = Retrieved.of(self.index.retrieve_positions(user_id))
        top_scores, order = tf.math.top_k(found.scores, k=self.top_k)
        top = tf.gather(found.positions, order, batch_dims=1)
        return _listed(tf.gather(self.index.item_ids, top), top_scores)

    @tf.function(input_signature=RANK_SIGNATURE, autograph=False)
    def rank(self, user_id, item_ids):
        found = Retrieved.of(self.index.retrieve_positions(user_id))
        positions = tf.reshape(self.index.lookup_items(tf.reshape(item_ids, [-1])),
                               tf.shape(item_ids))
        known = positions >= 0
        positions = tf.cast(tf.maximum(positions, 0), tf.int32)
        items = tf.gather(self.index.item_embeddings, positions)
        scores = tf.where(known, tf.reduce_sum(found.query[:, None, :] * items, axis=-1),
                          -np.inf)
        ranked = self._ranked(found._replace(positions=positions, scores=scores,
                                             personal=tf.ones_like(found.personal)),
                              tf.gather(self.first_seen, positions))
        return {"scores": ranked}

    @tf.function(input_signature=[EXAMPLES_SPEC], autograph=False)
    def score_examples(self, examples):
        parsed = tf.io.parse_example(examples, _EXAMPLE_FEATURES)
        user_id, item_id = parsed[features.USER_ID], parsed[features.ITEM_ID]
        # A batch holds each request's candidates together (one example per candidate): each
        # user's list is made once, not once per candidate (50x less work for the Evaluator).
        users, row = tf.unique(user_id)
        found = Retrieved.of(self.index.retrieve_positions(users))
        rows = self.index.lookup_users(users)
        listed = self.finish(found, rows, tf.constant(self.max_k), _no_exclusions(rows))["item_ids"]
        listed = tf.gather(listed, row)
        match = tf.equal(listed, item_id[:, None]) & tf.not_equal(listed, PAD_ID)
        position = tf.cast(tf.argmax(tf.cast(match, tf.int32), axis=1), tf.float32)
        scores = tf.where(tf.reduce_any(match, axis=1), 1.0 - position / float(self.max_k), 0.0)
        return {"scores": scores}


def _no_exclusions(rows):
    """``excluded`` of a batch of ``rows`` that excludes nothing: int64 [b, 0]."""
    return -tf.ones([tf.shape(rows)[0], 0], tf.int64)


def _no_second_list(positions, scores):
    """``_second_list``'s outputs where neither second list is used."""
    none = tf.fill(tf.shape(scores), -np.inf)
    return positions, none, none, tf.zeros([tf.shape(scores)[0]], tf.bool)


def _fixed(listed, k: int):
    """``listed`` (``_listed``'s outputs) with its lists' static length ``k``."""
    return {name: tf.ensure_shape(value, [None, k] if name != COUNT else [None])
            for name, value in listed.items()}


def _listed(item_ids, scores):
    """A list's outputs, its -inf entries (no candidate: seen, excluded, or none left) made
    padding. -inf entries come last: top_k and MMR rank every finite score before them."""
    valid = tf.math.is_finite(scores)
    return {"item_ids": tf.where(valid, item_ids, PAD_ID),
            "scores": tf.where(valid, scores, tf.zeros_like(scores)),
            COUNT: tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)}


@dataclasses.dataclass(frozen=True)
class Parts:
    """What a saved recommender holds, read back by ``parts_of`` (the benchmarks rebuild it
    with other rules or a larger catalogue: ``dataclasses.replace``, then ``build``).

    Attributes:
      index: the loaded index servable; ranker: its ranker (``score``) or None.
      settings: top_k, max_k, use_ranker and the rules it was saved with.
      first_seen: int64 [n_items]; disliked: (row_splits, positions) per index user row;
      neighbours: ``ranking.neighbours.Neighbours``; trend: ``ranking.lists.Trend``;
      ease: ``models.ranking.ease.ItemWeights`` (settings["ease_weight"]: their share;
      settings["popularity_weight"]: popularity's, for requests with no items).
    """

    index: object
    ranker: object
    settings: dict
    first_seen: np.ndarray
    disliked: tuple
    neighbours: item_neighbours.Neighbours
    trend: lists.Trend
    ease: item_item.ItemWeights

    @property
    def rules(self) -> RerankConfig:
        return RerankConfig(**self.settings["rules"])

    def build(self, rules: RerankConfig = None) -> Recommender:
        """A Recommender of these parts applying ``rules`` (default: the saved ones) and EASE's
        weight they set (None: the saved model's)."""
        rules = rules or self.rules
        weight = rules.ease_weight
        return Recommender(self.index, self.ranker, rules, self.settings["top_k"],
                           self.first_seen, self.disliked, self.settings["use_ranker"],
                           self.neighbours, self.trend, self.ease,
                           self.settings.get("ease_weight", 0.0) if weight is None else weight,
                           (self.settings.get("popularity_weight", 0.0)
                            if rules.popularity_weight is None else rules.popularity_weight))


def parts_of(loaded) -> Parts:
    """The parts of a recommender SavedModel loaded with ``tf.saved_model.load``."""
    contract.check(loaded.index, "the recommender's index")
    return Parts(
        index=loaded.index, ranker=getattr(loaded, "ranker", None),
        settings=json.loads(loaded.settings.numpy()),
        first_seen=loaded.first_seen.numpy(),
        disliked=(loaded.disliked_splits.numpy(), loaded.disliked_items.numpy()),
        neighbours=item_neighbours.Neighbours(loaded.neighbour_ids.numpy(),
                                              loaded.neighbour_cooccurrences.numpy(),
                                              loaded.neighbour_counts.numpy()),
        trend=lists.Trend(loaded.trend_cumulative.numpy(), loaded.trend_start.numpy(),
                          loaded.trend_width.numpy(), loaded.trend_window.numpy()),
        ease=item_item.ItemWeights(loaded.ease_ids.numpy(), loaded.ease_weights.numpy()))


WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_requests(user_id: str, item_ids) -> list:
    """PredictRequests for every signature TF Serving answers, with real inputs.

    TF Serving replays the warm-up file of a model version before serving it,
    so the first user request does not pay for loading tables and compiling
    the graph.
    """
    items = list(item_ids[:3]) or [""]
    _, context = signatures.request_inputs("warmup-new-user", history=items, exclude=items[:1])
    calls = [
        ("serving_default", {"user_id": [user_id, "warmup-unknown-user"]}),
        ("recommend_with_context", context),
        ("retrieve", {"user_id": [user_id]}),
        ("rank", {"user_id": [user_id], "item_ids": [items]}),
        ("lookup_titles", {"item_ids": items}),
        (SCORE_EXAMPLES, {"examples": [_example(user_id, items[0])]}),
    ]
    return [signatures.predict_request(signature, inputs) for signature, inputs in calls]


def _example(user_id: str, item_id: str) -> bytes:
    """A serialized example of ``score_examples``."""
    return tf.train.Example(features=tf.train.Features(feature={
        features.USER_ID: records.bytes_feature(user_id),
        features.ITEM_ID: records.bytes_feature(item_id)})).SerializeToString()


def write_warmup(export_dir: str, requests: list) -> str:
    """Writes ``requests`` as TF Serving's warm-up file (PredictionLog records) of the model."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def save(recommender: Recommender, export_dir: str) -> None:
    """Saves the signatures TF Serving serves and their warm-up requests."""
    # The functions, not their concrete functions: TensorFlow keys a trace by whether it is
    # made while saving, so a function traced before tf.saved_model.save is traced again in it
    # (about 1 s a signature here, twice per assembly).
    signatures = {
        "serving_default": recommender.recommend,
        "recommend_with_context": recommender.recommend_with_context,
        "retrieve": recommender.retrieve,
        "rank": recommender.rank,
        "lookup_titles": recommender.index.lookup_titles,
        SCORE_EXAMPLES: recommender.score_examples,
    }
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    tf.saved_model.save(recommender, export_dir, signatures=signatures, options=options)
    users = recommender.index.user_ids.numpy()
    items = [i.decode("utf-8") for i in recommender.index.item_ids.numpy()[:3]]
    # A warm-up request that fails stops TF Serving from loading the version: never send "".
    user = users[0].decode("utf-8") if len(users) else "warmup-user"
    write_warmup(export_dir, warmup_requests(user, items))
