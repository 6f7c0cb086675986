"""The ranking model: scores (user, candidate) pairs retrieval has proposed.

It reads what retrieval cannot afford to combine per pair: the element-wise
product of the user's and the item's embeddings (a learned, non-linear
interaction rather than a plain dot product), the retrieval score itself and
the item's popularity.
"""

from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf

QUERY, ITEM, SCORE, LOG_POPULARITY = "query", "item", "score", "log_popularity"


class Ranker(tf.keras.Model):
    """{query, item: [batch, dim], score, log_popularity: [batch]} -> logit [batch]."""

    def __init__(self, hidden_units: Sequence[int]):
        super().__init__(name="ranker")
        self._mlp = tf.keras.Sequential(
            [tf.keras.layers.Dense(units, activation="relu") for units in hidden_units]
            + [tf.keras.layers.Dense(1)])

    def call(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
        x = tf.concat([
            features[QUERY] * features[ITEM],
            features[SCORE][..., None],
            features[LOG_POPULARITY][..., None],
        ], axis=-1)
        return tf.squeeze(self._mlp(x), axis=-1)


def pair_features(user_embeddings, item_embeddings, log_popularity, rows, positions):
    """Ranker inputs of (user row, item position) pairs; rows and positions share a shape."""
    query = tf.gather(user_embeddings, rows)
    item = tf.gather(item_embeddings, positions)
    return {
        QUERY: query,
        ITEM: item,
        SCORE: tf.reduce_sum(query * item, axis=-1),
        LOG_POPULARITY: tf.gather(log_popularity, positions),
    }
