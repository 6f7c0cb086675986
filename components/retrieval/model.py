"""The two-tower retrieval model (TensorFlow Recommenders).

Both towers read Transform outputs (components/transform/preprocessing.py).
The query tower embeds the user's id and demographics; the candidate tower the
item's id, genres, title tokens and year, so an item with no interactions
still gets an embedding from its content. Trained with an in-batch softmax,
corrected for sampling bias (logQ) and with accidental hits removed.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf
import tensorflow_recommenders as tfrs

from components import features as F


class MeanBag(tf.keras.layers.Layer):
    """int64 [batch, n] ids, 0 = padding -> [batch, dim] mean of the non-padding embeddings."""

    def __init__(self, vocab: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self._embedding = tf.keras.layers.Embedding(vocab, dim)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.not_equal(ids, 0), tf.float32)[..., None]
        total = tf.reduce_sum(self._embedding(ids) * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


class QueryTower(tf.keras.Model):
    """User features -> [batch, embedding_dim]."""

    def __init__(self, sizes: Dict[str, int], feature_dim: int, embedding_dim: int, normalize: bool):
        super().__init__(name="query_tower")
        self._normalize = normalize
        self._user = tf.keras.layers.Embedding(sizes[F.USER_VOCAB] + 1, feature_dim)
        self._gender = tf.keras.layers.Embedding(sizes[F.GENDER_VOCAB] + 1, 4)
        self._occupation = tf.keras.layers.Embedding(sizes[F.OCCUPATION_VOCAB] + 1, 8)
        self._age = tf.keras.layers.Embedding(F.AGE_BUCKETS + 1, 4)
        self._dense = tf.keras.Sequential([
            tf.keras.layers.Dense(2 * embedding_dim, activation="relu"),
            tf.keras.layers.Dense(embedding_dim),
        ])

    def call(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
        x = tf.concat([
            self._user(features[F.USER_IDX]),
            self._gender(features[F.GENDER_IDX]),
            self._occupation(features[F.OCCUPATION_IDX]),
            self._age(features[F.AGE_BUCKET]),
        ], axis=-1)
        out = self._dense(x)
        return tf.math.l2_normalize(out, axis=-1) if self._normalize else out


class CandidateTower(tf.keras.Model):
    """Item features -> [batch, embedding_dim]."""

    def __init__(self, sizes: Dict[str, int], feature_dim: int, embedding_dim: int, normalize: bool):
        super().__init__(name="candidate_tower")
        self._normalize = normalize
        self._item = tf.keras.layers.Embedding(sizes[F.ITEM_VOCAB] + 1, feature_dim)
        self._genres = MeanBag(sizes[F.GENRE_VOCAB] + 2, 16, name="genres")
        self._title = MeanBag(sizes[F.TITLE_VOCAB] + 2, 16, name="title")
        self._year = tf.keras.layers.Embedding(F.YEAR_BUCKETS + 1, 4)
        self._dense = tf.keras.Sequential([
            tf.keras.layers.Dense(2 * embedding_dim, activation="relu"),
            tf.keras.layers.Dense(embedding_dim),
        ])

    def call(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
        x = tf.concat([
            self._item(features[F.ITEM_IDX]),
            self._genres(features[F.GENRE_IDS]),
            self._title(features[F.TITLE_TOKENS]),
            self._year(features[F.YEAR_BUCKET]),
        ], axis=-1)
        out = self._dense(x)
        return tf.math.l2_normalize(out, axis=-1) if self._normalize else out


class TwoTowerModel(tfrs.Model):
    """Query and candidate towers trained with a corrected in-batch softmax.

    Args:
      sizes: Transform vocabulary sizes by vocabulary name.
      item_probability: float32 [item vocab + 1], the share of training
        interactions of each item index: the in-batch sampling probability used
        for the logQ correction.
      config: a RetrievalConfig.
    """

    def __init__(self, sizes: Dict[str, int], item_probability: tf.Tensor, config):
        super().__init__()
        self.query_tower = QueryTower(sizes, config.feature_dim, config.embedding_dim,
                                      config.l2_normalize)
        self.candidate_tower = CandidateTower(sizes, config.feature_dim, config.embedding_dim,
                                              config.l2_normalize)
        self._item_probability = tf.constant(item_probability, tf.float32)
        self._logq = config.logq_correction
        self._accidental = config.remove_accidental_hits
        self.task = tfrs.tasks.Retrieval(temperature=config.temperature,
                                         remove_accidental_hits=config.remove_accidental_hits)

    def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_tower(features)
        candidate = self.candidate_tower(features)
        kwargs = {}
        if self._logq:
            kwargs["candidate_sampling_probability"] = tf.gather(
                self._item_probability, features[F.ITEM_IDX])
        if self._accidental:
            kwargs["candidate_ids"] = features[F.ITEM_IDX]
        return self.task(query, candidate, compute_metrics=False, **kwargs)
