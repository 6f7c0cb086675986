"""The retrieval servable: user id -> top candidates from the item index.

Known users are scored by the dot product of their query embedding with every
item embedding (exact flavour) or through a ScaNN index (scann flavour); the
items they interacted with in training are never returned. Unknown users get
the most popular items: a non-personalised list, not an error.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

EXACT, SCANN = "exact", "scann"


def _scann_layer(embeddings: np.ndarray, k: int, num_leaves: int, leaves_to_search: int):
    try:
        import tensorflow_recommenders as tfrs
        layer = tfrs.layers.factorized_top_k.ScaNN(
            k=k, distance_measure="dot_product", num_leaves=num_leaves,
            num_leaves_to_search=leaves_to_search, num_reordering_candidates=max(4 * k, 100))
    except ImportError as e:  # pragma: no cover - scann is in the pinned stack
        raise ImportError("The 'scann' index flavour needs the scann package "
                          "(pip install scann==1.3.2) or use index flavour 'exact'.") from e
    layer.index(tf.constant(embeddings), tf.range(embeddings.shape[0], dtype=tf.int32))
    return layer


class RetrievalIndex(tf.Module):
    """Index over the catalogue with per-user exclusions and a popularity fallback.

    Args:
      item_ids: [n_items] str, the catalogue.
      item_embeddings: float32 [n_items, dim].
      item_titles: [n_items] str.
      popularity: float32 [n_items], training interactions per item.
      user_ids: [n_users] str, users known from training.
      user_embeddings: float32 [n_users, dim].
      seen_row_splits: int64 [n_users + 1], seen_items: int32 [total]: the
        catalogue positions each user interacted with in training (ragged rows).
      candidates: list length of ``retrieve``.
      flavour: 'exact' or 'scann'.
      num_leaves, leaves_to_search: ScaNN tree (scann flavour only).
    """

    def __init__(self, item_ids, item_embeddings, item_titles, popularity, user_ids,
                 user_embeddings, seen_row_splits, seen_items, candidates: int, flavour: str,
                 num_leaves: Optional[int] = None, leaves_to_search: Optional[int] = None):
        super().__init__()
        n_items, dim = item_embeddings.shape
        self.candidates = min(int(candidates), n_items)
        self.flavour = flavour
        self.item_ids = tf.Variable(np.asarray(item_ids, dtype=object).astype(bytes), trainable=False)
        self.item_titles = tf.Variable(np.asarray(item_titles, dtype=object).astype(bytes),
                                       trainable=False)
        self.item_embeddings = tf.Variable(item_embeddings.astype(np.float32), trainable=False)
        self.popularity = tf.Variable(popularity.astype(np.float32), trainable=False)
        # Unknown users map to an extra last row: zero embedding, nothing seen.
        self.user_embeddings = tf.Variable(
            np.vstack([user_embeddings, np.zeros((1, dim))]).astype(np.float32), trainable=False)
        self.seen_row_splits = tf.Variable(
            np.append(seen_row_splits, seen_row_splits[-1]).astype(np.int64), trainable=False)
        self.seen_items = tf.Variable(np.asarray(seen_items, np.int32), trainable=False)
        self.max_seen = int(np.diff(seen_row_splits).max()) if len(user_ids) else 0
        self.user_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(np.asarray(user_ids, dtype=object).astype(bytes)),
                tf.range(len(user_ids), dtype=tf.int64)),
            default_value=len(user_ids))
        self.item_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(np.asarray(item_ids, dtype=object).astype(bytes)),
                tf.range(n_items, dtype=tf.int64)),
            default_value=-1)
        self.num_users = len(user_ids)
        self.user_ids = tf.Variable(np.asarray(user_ids, dtype=object).astype(bytes), trainable=False)
        self.scann = None
        if flavour == SCANN:
            leaves = num_leaves or max(1, int(np.sqrt(n_items)))
            search = leaves_to_search or max(1, leaves // 10)
            k = min(self.candidates + self.max_seen, n_items)
            self.scann = _scann_layer(item_embeddings.astype(np.float32), k, leaves, search)
        elif flavour != EXACT:
            raise ValueError(f"index flavour must be '{EXACT}' or '{SCANN}', got '{flavour}'")

    def _rows(self, user_id: tf.Tensor):
        rows = self.user_table.lookup(user_id)
        known = rows < self.num_users
        return rows, known

    def _seen(self, rows: tf.Tensor) -> tf.RaggedTensor:
        seen = tf.RaggedTensor.from_row_splits(self.seen_items, self.seen_row_splits)
        return tf.gather(seen, rows)

    def _personal_top(self, query: tf.Tensor, seen: tf.RaggedTensor):
        """Top ``candidates`` (scores, positions) of each query, its seen items excluded."""
        if self.scann is None:
            scores = tf.matmul(query, self.item_embeddings, transpose_b=True)
            flat = tf.stack([tf.cast(seen.value_rowids(), tf.int32), seen.flat_values], axis=1)
            scores += tf.scatter_nd(flat, tf.fill([tf.shape(flat)[0]], -np.inf), tf.shape(scores))
            return tf.math.top_k(scores, k=self.candidates)
        # ScaNN returned candidates + max_seen items, so enough remain after exclusion.
        found_scores, found = self.scann(query)
        is_seen = tf.reduce_any(
            tf.equal(found[:, :, None], seen.to_tensor(default_value=-1)[:, None, :]), axis=2)
        top_scores, order = tf.math.top_k(tf.where(is_seen, -np.inf, found_scores), k=self.candidates)
        return top_scores, tf.gather(found, order, batch_dims=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def retrieve_positions(self, user_id):
        """Top ``candidates`` catalogue positions of each user.

        Args:
          user_id: [batch] string.

        Returns:
          (positions int32 [batch, c], scores float32 [batch, c], known bool [batch]).
        """
        rows, known = self._rows(user_id)
        top_scores, top_positions = self._personal_top(tf.gather(self.user_embeddings, rows),
                                                       self._seen(rows))
        popular_scores, popular = tf.math.top_k(tf.math.log1p(self.popularity), k=self.candidates)
        positions = tf.where(known[:, None], top_positions, popular[None, :])
        scores = tf.where(known[:, None], top_scores, popular_scores[None, :])
        return positions, scores, known

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup_users(self, user_id):
        """user_id [batch] -> int64 rows of user_embeddings; unknown users get the last row."""
        return self.user_table.lookup(user_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup_items(self, item_ids):
        """item_ids [n] -> int64 catalogue positions; -1 for unknown ids."""
        return self.item_table.lookup(item_ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def retrieve(self, user_id):
        """user_id [batch] -> item_ids [batch, c] string, scores [batch, c] float32."""
        positions, scores, _ = self.retrieve_positions(user_id)
        return {"item_ids": tf.gather(self.item_ids, positions), "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_ids")])
    def lookup_titles(self, item_ids):
        """item_ids [n] -> titles [n] ('' for unknown ids)."""
        positions = self.lookup_items(item_ids)
        titles = tf.gather(self.item_titles, tf.maximum(positions, 0))
        return {"titles": tf.where(positions >= 0, titles, tf.constant(b""))}


def save(index: RetrievalIndex, export_dir: str) -> None:
    """Saves with the signatures TF Serving and the next stages call."""
    # ScaNN's ops live outside TensorFlow's namespace; the layer is traced (called) by
    # get_concrete_function before saving.
    signatures = {
        "serving_default": index.retrieve.get_concrete_function(),
        "retrieve": index.retrieve.get_concrete_function(),
        "lookup_titles": index.lookup_titles.get_concrete_function(),
    }
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]) if index.scann else None
    tf.saved_model.save(index, export_dir, signatures=signatures, options=options)
