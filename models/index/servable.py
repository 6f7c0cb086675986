"""The retrieval servable: a user (and, optionally, request-time context) -> top candidates.

The query embedding is computed per request by the retrieval model's query
tower (``encoder``), from features the servable looks up for a known user: the
demographics, the latest training history and the time of their last
training interaction. A request may add context (demographics, recent
history): a brand-new user with a history or demographics gets a personal
list. Candidates are scored by dot product against every item (exact flavour)
or through a ScaNN index (scann flavour); items the user interacted with, and
a request's history and exclusion list, are never returned. A request with
nothing to personalise on (an unknown user id and no context) gets the most
popular items: a non-personalised list, not an error.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from models import arrays, features
from models.index import searcher
from models.index.contract import Retrieved
from models.transform import raw

EXACT, SCANN = searcher.EXACT, searcher.SCANN

# Request-time context: the query tower's raw inputs but the time, which the servable
# supplies; "" / 0 mean "not given" (a known user's stored value is used); plus item ids
# never to return ([batch, n], padded with "").
EXCLUDE = "exclude"
CONTEXT_SIGNATURE = {**{key: spec for key, spec in raw.USER_SIGNATURE.items() if key != features.TIMESTAMP},
                     EXCLUDE: tf.TensorSpec([None, None], tf.string, EXCLUDE)}


def _bytes(values) -> np.ndarray:
    return arrays.to_bytes(values)


@dataclasses.dataclass
class Users:
    """Users known from training, as the query tower reads them.

    Attributes:
      ids: [u] str.
      ages: int [u]; genders, occupations: [u] str.
      histories: [u, n] str, each user's latest training items, oldest first,
        padded with "" at the end.
      last_seen: int [u], timestamp of each user's last training interaction.
      seen_row_splits: int [u + 1], seen_items: int [total]: the catalogue
        positions each user interacted with in training (ragged rows).
    """

    ids: np.ndarray
    ages: np.ndarray
    genders: np.ndarray
    occupations: np.ndarray
    histories: np.ndarray
    last_seen: np.ndarray
    seen_row_splits: np.ndarray
    seen_items: np.ndarray


def search_depth(candidates: int, users: Users, n_items: int) -> int:
    """Results searched per query: enough that ``candidates`` remain after excluding
    everything a user saw in training and a request's history."""
    max_seen = int(np.diff(users.seen_row_splits).max()) if len(users.ids) else 0
    return min(int(candidates) + max_seen + features.MAX_HISTORY, n_items)


def _last(values: tf.RaggedTensor, n: int) -> tf.RaggedTensor:
    """The last ``n`` values of each row (a 2-D ragged tensor).

    A range of flat positions per row and one gather: 22 graph nodes, where a ragged gather
    with ``batch_dims=1`` built 391 and 18 functions (0.3 s of tracing a call, twice in each
    trace of ``retrieve_positions_with_context``, and as much again for every load)."""
    ends = values.row_limits()
    taken = tf.ragged.range(tf.maximum(values.row_starts(), ends - n), ends)
    return taken.with_flat_values(tf.gather(values.flat_values, taken.flat_values))


class RetrievalIndex(tf.Module):
    """Index over the catalogue with a query encoder, per-user exclusions and a popularity fallback.

    Args:
      item_ids: [n_items] str, the catalogue.
      item_embeddings: float32 [n_items, dim].
      item_titles: [n_items] str.
      popularity: float32 [n_items], training interactions per item.
      users: the users known from training.
      encoder: an object whose ``query_embedding(features)`` maps a dict of
        [batch] raw user features (``models/transform/raw.USER_SIGNATURE``)
        to {'embedding': [batch, dim]}: the retrieval model's SavedModel.
      candidates: list length of ``retrieve``.
      settings: the searcher's settings (``searcher.resolve``); None: exact.
    """

    def __init__(self, item_ids, item_embeddings, item_titles, popularity, users: Users, encoder,
                 candidates: int, settings: Optional[searcher.Settings] = None):
        super().__init__()
        n_items = item_embeddings.shape[0]
        self.candidates = min(int(candidates), n_items)
        # Saved (plain attributes are not): what ``candidates_of`` reads from a loaded servable.
        self.candidate_count = tf.Variable(self.candidates, trainable=False)
        self.settings = settings or searcher.Settings(EXACT)
        self.flavour = self.settings.flavour
        self.encoder = encoder
        self.item_ids = tf.Variable(_bytes(item_ids), trainable=False)
        self.item_titles = tf.Variable(_bytes(item_titles), trainable=False)
        self.item_embeddings = tf.Variable(item_embeddings.astype(np.float32), trainable=False)
        self.popularity = tf.Variable(popularity.astype(np.float32), trainable=False)
        # Unknown users map to an extra last row: no features, nothing seen, the latest time.
        n_users = len(users.ids)
        self.num_users = n_users
        self.user_ids = tf.Variable(_bytes(users.ids), trainable=False)
        self.user_ages = tf.Variable(np.append(users.ages, 0).astype(np.int64), trainable=False)
        self.user_genders = tf.Variable(_bytes(np.append(users.genders, "")), trainable=False)
        self.user_occupations = tf.Variable(_bytes(np.append(users.occupations, "")), trainable=False)
        histories = np.asarray(users.histories, dtype=object).reshape(n_users, -1)
        histories = np.vstack([histories, np.full((1, histories.shape[1]), "", dtype=object)])
        self.user_histories = tf.Variable(_bytes(histories), trainable=False)
        now = int(np.max(users.last_seen)) if n_users else 0
        self.user_last_seen = tf.Variable(np.append(users.last_seen, now).astype(np.int64),
                                          trainable=False)
        splits = np.asarray(users.seen_row_splits, np.int64)
        self.seen_row_splits = tf.Variable(np.append(splits, splits[-1]), trainable=False)
        self.seen_items = tf.Variable(np.asarray(users.seen_items, np.int32), trainable=False)
        self.user_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(_bytes(users.ids)),
                                                tf.range(n_users, dtype=tf.int64)),
            default_value=n_users)
        self.item_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(_bytes(item_ids)),
                                                tf.range(n_items, dtype=tf.int64)),
            default_value=-1)
        self.search_k = search_depth(candidates, users, n_items)
        self.searcher = searcher.build(self.item_embeddings, self.settings, self.search_k)
        # The popularity list, deep enough to survive a request's exclusions, sorted once here.
        popular = np.argsort(-np.asarray(popularity, np.float32), kind="stable")[: self.search_k]
        self.popular_positions = tf.Variable(popular.astype(np.int32), trainable=False)
        self.popular_scores = tf.Variable(np.log1p(np.asarray(popularity, np.float32)[popular]),
                                          trainable=False)

    # --- building blocks (traced into the signatures) ---

    def _seen(self, rows: tf.Tensor) -> tf.RaggedTensor:
        seen = tf.RaggedTensor.from_row_splits(self.seen_items, self.seen_row_splits)
        return tf.gather(seen, rows)

    def _stored_history(self, rows: tf.Tensor) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_tensor(tf.gather(self.user_histories, rows), padding=b"")

    def _encode(self, user_id, rows, age, gender, occupation, history: tf.RaggedTensor):
        query_features = {
            features.USER_ID: user_id, features.AGE: age, features.GENDER: gender,
            features.OCCUPATION: occupation,
            features.HISTORY: history.to_tensor(default_value=b""),
            features.TIMESTAMP: tf.gather(self.user_last_seen, rows),
        }
        return self.encoder.query_embedding(query_features)["embedding"]

    def _without_excluded(self, found_scores: tf.Tensor, found: tf.Tensor, exclude: tf.RaggedTensor):
        """Top ``candidates`` (scores, positions) of searched results [b, search_k], the
        positions of ``exclude`` left out."""
        # A found position is excluded when a binary search of the row's sorted
        # exclusions lands on it: O(k log e) per row, no [k, e] comparison matrix.
        excluded = tf.sort(exclude.to_tensor(default_value=np.iinfo(np.int32).max), axis=1)
        excluded = tf.concat([excluded, tf.fill([tf.shape(found)[0], 1], np.iinfo(np.int32).max)],
                             axis=1)
        at = tf.searchsorted(excluded, found)
        is_excluded = tf.equal(tf.gather(excluded, at, batch_dims=1), found)
        top_scores, order = tf.math.top_k(tf.where(is_excluded, -np.inf, found_scores),
                                          k=self.candidates)
        # Results the index could not fill (position -1, score -inf) point at item 0 with
        # score -inf, like excluded items: a -inf score means "no candidate".
        return top_scores, tf.maximum(tf.gather(found, order, batch_dims=1), 0)

    def _answer(self, query, exclude, personal):
        """Personal top lists where ``personal``, the popularity list elsewhere; the
        exclusions apply to both."""
        found_scores, found = self.searcher.search(query, self.search_k)
        top_scores, top_positions = self._without_excluded(found_scores, found, exclude)
        batch = tf.shape(query)[0]
        popular_scores, popular = self._without_excluded(
            tf.tile(self.popular_scores[None, :], [batch, 1]),
            tf.tile(tf.cast(self.popular_positions, found.dtype)[None, :], [batch, 1]), exclude)
        positions = tf.where(personal[:, None], top_positions, popular)
        scores = tf.where(personal[:, None], top_scores, popular_scores)
        return positions, scores

    # --- functions the recommender and the ranking trainer call ---

    def _stored_query(self, user_id, rows):
        """Query embeddings from the features stored for user ``rows``."""
        return self._encode(user_id, rows, tf.gather(self.user_ages, rows),
                            tf.gather(self.user_genders, rows), tf.gather(self.user_occupations, rows),
                            self._stored_history(rows))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def embed_users(self, user_id):
        """user_id [batch] -> query embeddings [batch, dim] from the stored features."""
        return self._stored_query(user_id, self.user_table.lookup(user_id))

    def _history_positions(self, history: tf.RaggedTensor) -> tf.Tensor:
        """Catalogue positions int32 [batch, MAX_HISTORY] of history ids, -1 for padding
        and ids outside the catalogue."""
        positions = tf.ragged.map_flat_values(self.item_table.lookup, history)
        return tf.cast(positions.to_tensor(default_value=-1, shape=[None, features.MAX_HISTORY]), tf.int32)

    def _known_positions(self, item_ids: tf.RaggedTensor):
        """(catalogue positions int32 of the known ids, count of unknown ids per row)."""
        positions = tf.ragged.map_flat_values(self.item_table.lookup, item_ids)
        known = positions >= 0
        unknown = tf.reduce_sum(tf.cast(~known, tf.int32), axis=1)
        return tf.cast(tf.ragged.boolean_mask(positions, known), tf.int32), unknown

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def retrieve_positions(self, user_id):
        """Top ``candidates`` catalogue positions of each user.

        Returns:
          ``contract.Retrieved`` outputs; 'time' is the user's last known
          interaction, 'unknown' is 0.
        """
        rows = self.user_table.lookup(user_id)
        known = rows < self.num_users
        history = self._stored_history(rows)
        query = self._stored_query(user_id, rows)
        positions, scores = self._answer(query, self._seen(rows), known)
        return Retrieved(positions=positions, scores=scores, personal=known, query=query,
                         history=self._history_positions(history),
                         time=tf.gather(self.user_last_seen, rows),
                         unknown=tf.zeros_like(rows, tf.int32)).outputs()

    @tf.function(input_signature=[CONTEXT_SIGNATURE], autograph=False)
    def retrieve_positions_with_context(self, context):
        """Like ``retrieve_positions``, with request-time context.

        Given demographics replace stored ones; the request's history (at most
        the latest MAX_HISTORY items) is appended to a known user's stored
        history and excluded from the results, as are the request's
        exclusions. Ids outside the catalogue cannot be recommended and are
        counted in 'unknown' (the query tower reads them as out-of-vocabulary).
        A request with no known user, no history and no demographics gets the
        popularity list.
        """
        user_id = context[features.USER_ID]
        rows = self.user_table.lookup(user_id)
        known = rows < self.num_users
        age = tf.where(context[features.AGE] > 0, context[features.AGE], tf.gather(self.user_ages, rows))
        gender = tf.where(context[features.GENDER] != b"", context[features.GENDER],
                          tf.gather(self.user_genders, rows))
        occupation = tf.where(context[features.OCCUPATION] != b"", context[features.OCCUPATION],
                              tf.gather(self.user_occupations, rows))
        request = _last(tf.RaggedTensor.from_tensor(context[features.HISTORY], padding=b""),
                        features.MAX_HISTORY)
        history = _last(tf.concat([self._stored_history(rows), request], axis=1), features.MAX_HISTORY)
        query = self._encode(user_id, rows, age, gender, occupation, history)
        requested, unknown_history = self._known_positions(request)
        excluded, unknown_excluded = self._known_positions(
            tf.RaggedTensor.from_tensor(context[EXCLUDE], padding=b""))
        exclude = tf.concat([self._seen(rows), requested, excluded], axis=1)
        personal = (known | (request.row_lengths() > 0) | (age > 0) | (gender != b"")
                    | (occupation != b""))
        positions, scores = self._answer(query, exclude, personal)
        return Retrieved(positions=positions, scores=scores, personal=personal, query=query,
                         history=self._history_positions(history),
                         time=tf.gather(self.user_last_seen, rows),
                         unknown=unknown_history + unknown_excluded).outputs()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def lookup_users(self, user_id):
        """user_id [batch] -> int64 rows; unknown users get ``num_users``."""
        return self.user_table.lookup(user_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def lookup_items(self, item_ids):
        """item_ids [n] -> int64 catalogue positions; -1 for unknown ids."""
        return self.item_table.lookup(item_ids)

    # --- signatures ---

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")], autograph=False)
    def retrieve(self, user_id):
        """user_id [batch] -> item_ids [batch, c] string, scores [batch, c] float32."""
        found = Retrieved.of(self.retrieve_positions(user_id))
        return {"item_ids": tf.gather(self.item_ids, found.positions), "scores": found.scores}

    @tf.function(input_signature=[CONTEXT_SIGNATURE], autograph=False)
    def retrieve_with_context(self, context):
        """Request-time context -> item_ids [batch, c] string, scores [batch, c] float32."""
        found = Retrieved.of(self.retrieve_positions_with_context(context))
        return {"item_ids": tf.gather(self.item_ids, found.positions), "scores": found.scores,
                "unknown_items": found.unknown}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_ids")], autograph=False)
    def lookup_titles(self, item_ids):
        """item_ids [n] -> titles [n] ('' for unknown ids)."""
        positions = self.lookup_items(item_ids)
        titles = tf.gather(self.item_titles, tf.maximum(positions, 0))
        return {"titles": tf.where(positions >= 0, titles, tf.constant(b""))}


def save(index: RetrievalIndex, export_dir: str) -> None:
    """Saves with the signatures TF Serving and the next stages call."""
    functions = {"serving_default": index.retrieve, "retrieve": index.retrieve,
                  "retrieve_with_context": index.retrieve_with_context,
                  "lookup_titles": index.lookup_titles}
    # ScaNN's ops live outside TensorFlow's namespace; its layer is traced (called) by
    # get_concrete_function before saving. An exact index is traced only by the save: TensorFlow
    # keys a trace by whether it is made while saving, so one made before is made again.
    signatures = ({name: f.get_concrete_function() for name, f in functions.items()}
                  if index.flavour == SCANN else functions)
    options = (tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
               if index.flavour == SCANN else None)
    tf.saved_model.save(index, export_dir, signatures=signatures, options=options)
