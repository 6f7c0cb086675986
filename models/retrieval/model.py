"""The two-tower retrieval model (TensorFlow Recommenders).

Both towers read Transform outputs (models/transform/preprocessing.py).

* The candidate tower embeds the item's id, genres, title tokens and year, so
  an item with no interactions still gets an embedding from its content.
* The query tower embeds the user's id and demographics, the user's history
  (a mean of the item-id embeddings of the items interacted with before, and a
  mean of the latest few, the embedding table shared with the candidate tower
  as in YouTube's candidate generation; Covington et al., RecSys 2016) and,
  optionally, the time of the request. A user unknown to training is still
  placed by history and demographics.

Trained with an in-batch softmax over the batch's items, optionally with extra
uniformly sampled items (mixed negative sampling; Yang et al., WWW 2020),
corrected for the sampling bias of both pools (logQ; Yi et al., RecSys 2019),
with a temperature and with accidental hits removed.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features

# Transformed features each tower reads.
QUERY_FEATURES = (features.USER_IDX, features.GENDER_IDX, features.OCCUPATION_IDX, features.AGE_BUCKET,
                  features.HISTORY_IDS,
                  features.TIME_SCALED)
CANDIDATE_FEATURES = (features.ITEM_IDX, features.GENRE_IDS, features.TITLE_TOKENS, features.YEAR_BUCKET)
RECENT = 5  # how many of the latest history items form the "recent" bag

# AutoGraph converts every function a converted one calls, unless its module is known to need no
# conversion; tf_keras (Keras 2 under TF 2.16) is not on TensorFlow's list, so Keras's own
# layer, training and optimizer code was converted at each model's first step: about 25 s of a
# 30-s first epoch on the default data. Our code branches on its configuration, never on a
# tensor, so the training step runs unconverted (``TwoTowerModel.train_step``); TFRS's
# retrieval task branches on ``len(tf.shape(x))``, which only AutoGraph can trace, so its body
# alone is converted (``_RetrievalTask``).
_not_converted = tf.autograph.experimental.do_not_convert


class MeanBag(tf.keras.layers.Layer):
    """int64 [batch, n] ids, 0 = padding -> [batch, dim] mean of the non-padding embeddings.

    Args:
      embedding: the Embedding layer (shared with other layers if given one).
      latest: if set, only the last ``latest`` non-padding ids of each row
        (rows hold ids oldest first, padding at the end).
    """

    def __init__(self, embedding: tf.keras.layers.Embedding, latest: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._embedding = embedding
        self._latest = latest

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.not_equal(ids, 0), tf.float32)
        if self._latest:
            count = tf.reduce_sum(mask, axis=1, keepdims=True)
            position = tf.cumsum(mask, axis=1)
            mask *= tf.cast(position > count - self._latest, tf.float32)
        mask = mask[..., None]
        total = tf.reduce_sum(self._embedding(ids) * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def _drop_ids(ids: tf.Tensor, rate: float) -> tf.Tensor:
    """Replaces a share ``rate`` of the ids by 0, the out-of-vocabulary id."""
    if rate <= 0:
        return ids
    return tf.where(tf.random.uniform(tf.shape(ids)) < rate, tf.zeros_like(ids), ids)


def _trained_only(ids: tf.Tensor, trained) -> tf.Tensor:
    """Ids without training interactions replaced by 0, the out-of-vocabulary id (whose row
    id dropout trains), so a vocabulary wider than the training data (Transform analyses
    every split) never serves an untrained embedding row."""
    if trained is None:
        return ids
    return tf.where(tf.gather(trained, ids), ids, tf.zeros_like(ids))


class _MLP(tf.keras.layers.Layer):
    """Two dense layers (ReLU between). A Sequential would build a functional graph of itself
    at its first call, several seconds of tracing per model for the same computation."""

    def __init__(self, embedding_dim: int, **kwargs):
        super().__init__(**kwargs)
        self._hidden = tf.keras.layers.Dense(2 * embedding_dim, activation="relu")
        self._out = tf.keras.layers.Dense(embedding_dim)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self._out(self._hidden(inputs))


class QueryTower(tf.keras.Model):
    """User features, history and time -> [batch, embedding_dim]."""

    def __init__(self, sizes: Dict[str, int], item_embedding: tf.keras.layers.Embedding, config,
                 trained_users=None, trained_items=None):
        super().__init__(name="query_tower")
        self._config = config
        self._trained_users, self._trained_items = trained_users, trained_items
        self._user = tf.keras.layers.Embedding(sizes[features.USER_VOCAB] + 1, config.feature_dim)
        self._gender = tf.keras.layers.Embedding(sizes[features.GENDER_VOCAB] + 1, 4)
        self._occupation = tf.keras.layers.Embedding(sizes[features.OCCUPATION_VOCAB] + 1, 8)
        self._age = tf.keras.layers.Embedding(features.AGE_BUCKETS + 1, 4)
        self._history = MeanBag(item_embedding, name="history")
        self._recent = MeanBag(item_embedding, latest=RECENT, name="recent_history")
        self._dense = _MLP(config.embedding_dim)

    def call(self, inputs: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
        parts = [
            self._gender(inputs[features.GENDER_IDX]),
            self._occupation(inputs[features.OCCUPATION_IDX]),
            self._age(inputs[features.AGE_BUCKET]),
        ]
        # A share of training examples as a new user asks: no id and no history, demographics
        # (and time) alone.
        new_user = None
        if training and self._config.new_user_dropout > 0:
            new_user = tf.random.uniform(tf.shape(inputs[features.USER_IDX])) < \
                self._config.new_user_dropout
        if self._config.use_user_id:
            user = _trained_only(inputs[features.USER_IDX], self._trained_users)
            if training:
                # Train the out-of-vocabulary row: the id new users get at serving time.
                user = _drop_ids(user, self._config.user_id_dropout)
            if new_user is not None:
                user = tf.where(new_user, tf.zeros_like(user), user)
            parts.append(self._user(user))
        if self._config.use_history:
            history = _trained_only(inputs[features.HISTORY_IDS], self._trained_items)
            if new_user is not None:
                history = tf.where(new_user[:, None], tf.zeros_like(history), history)
            count = tf.reduce_sum(tf.cast(tf.not_equal(history, 0), tf.float32), axis=1)
            parts += [self._history(history), self._recent(history),
                      tf.math.log1p(count)[:, None]]
        if self._config.use_time:
            parts.append(tf.cast(inputs[features.TIME_SCALED], tf.float32)[:, None])
        out = self._dense(tf.concat(parts, axis=-1))
        if self._config.l2_normalize:
            out = tf.math.l2_normalize(out, axis=-1)
        if self._config.item_bias:
            # Temperature-scaled so the candidate's bias enters the logit unscaled.
            out = tf.concat([out, tf.fill([tf.shape(out)[0], 1], self._config.temperature)], axis=-1)
        return out


class CandidateTower(tf.keras.Model):
    """Item features -> [batch, embedding_dim]."""

    def __init__(self, sizes: Dict[str, int], item_embedding: tf.keras.layers.Embedding, config,
                 trained_items=None):
        super().__init__(name="candidate_tower")
        self._trained_items = trained_items
        self._normalize = config.l2_normalize
        self._id_dropout = config.item_id_dropout
        self._bias = config.item_bias
        self._item = item_embedding
        if self._bias:
            self._id_bias = tf.keras.layers.Embedding(sizes[features.ITEM_VOCAB] + 1, 1,
                                                      embeddings_initializer="zeros")
            self._content_bias = tf.keras.layers.Dense(1)
        self._genres = MeanBag(tf.keras.layers.Embedding(sizes[features.GENRE_VOCAB] + 2, 16), name="genres")
        self._title = MeanBag(tf.keras.layers.Embedding(sizes[features.TITLE_VOCAB] + 2, 16), name="title")
        self._year = tf.keras.layers.Embedding(features.YEAR_BUCKETS + 1, 4)
        self._dense = _MLP(config.embedding_dim)

    def call(self, inputs: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
        item = _trained_only(inputs[features.ITEM_IDX], self._trained_items)
        if training:
            item = _drop_ids(item, self._id_dropout)
        content = tf.concat([
            self._genres(inputs[features.GENRE_IDS]),
            self._title(inputs[features.TITLE_TOKENS]),
            self._year(inputs[features.YEAR_BUCKET]),
        ], axis=-1)
        out = self._dense(tf.concat([self._item(item), content], axis=-1))
        if self._normalize:
            out = tf.math.l2_normalize(out, axis=-1)
        if self._bias:
            bias = self._id_bias(item) + self._content_bias(content)
            out = tf.concat([out, bias], axis=-1)
        return out


class _RetrievalTask(tfrs.tasks.Retrieval):
    """TFRS's retrieval task with only its own body converted by AutoGraph (see above)."""

    call = tf.autograph.to_graph(tfrs.tasks.Retrieval.call, recursive=False)


class TwoTowerModel(tfrs.Model):
    """Query and candidate towers trained with a corrected (mixed) in-batch softmax.

    Args:
      sizes: Transform vocabulary sizes by vocabulary name.
      item_probability: float32 [item vocab + 1], the share of training
        interactions of each item index: the in-batch sampling probability used
        for the logQ correction.
      item_table: candidate features of every item index (row i = item index
        i), the pool of the extra uniform negatives.
      config: a RetrievalConfig.
      trained_users, trained_items: bool [vocab + 1], the ids with training
        interactions; the others are read as out-of-vocabulary. None: all.
    """

    def __init__(self, sizes: Dict[str, int], item_probability: np.ndarray,
                 item_table: Dict[str, np.ndarray], config, trained_users: Optional[np.ndarray] = None,
                 trained_items: Optional[np.ndarray] = None):
        super().__init__()
        item_embedding = tf.keras.layers.Embedding(sizes[features.ITEM_VOCAB] + 1, config.feature_dim,
                                                   name="item_id_embedding")
        users = None if trained_users is None else tf.constant(trained_users, tf.bool)
        items = None if trained_items is None else tf.constant(trained_items, tf.bool)
        self.query_tower = QueryTower(sizes, item_embedding, config, users, items)
        self.candidate_tower = CandidateTower(sizes, item_embedding, config, items)
        self._item_probability = tf.constant(item_probability, tf.float32)
        self._item_table = {key: tf.constant(value) for key, value in item_table.items()}
        self._num_items = int(len(item_probability)) - 1
        self._config = config
        self.task = _RetrievalTask(temperature=config.temperature,
                                         remove_accidental_hits=config.remove_accidental_hits)

    def warm_slots(self):
        """Every variable of both towers by a stable name, with the Transform vocabulary its rows
        follow and the rows before the vocabulary's first token ((variable, vocabulary or None,
        offset)): what a warm start carries over (models/retrieval/warm.py). The towers must
        have been called once (their variables exist)."""
        q, c = self.query_tower, self.candidate_tower
        slots = {"item_id": (c._item.embeddings, features.ITEM_VOCAB, 1),
                 "user_id": (q._user.embeddings, features.USER_VOCAB, 1),
                 "gender": (q._gender.embeddings, features.GENDER_VOCAB, 1),
                 "occupation": (q._occupation.embeddings, features.OCCUPATION_VOCAB, 1),
                 "age": (q._age.embeddings, None, 0),
                 # Token bags: row 0 pads, row 1 is out-of-vocabulary.
                 "genres": (c._genres._embedding.embeddings, features.GENRE_VOCAB, 2),
                 "title": (c._title._embedding.embeddings, features.TITLE_VOCAB, 2),
                 "year": (c._year.embeddings, None, 0)}
        dense = [("query_dense", q._dense), ("candidate_dense", c._dense)]
        if c._bias:
            slots["item_bias"] = (c._id_bias.embeddings, features.ITEM_VOCAB, 1)
            dense.append(("content_bias", c._content_bias))
        for name, layer in dense:
            for k, weight in enumerate(layer.weights):
                slots[f"{name}/{k}"] = (weight, None, 0)
        return slots

    def _uniform_negatives(self):
        """Candidate features of ``uniform_negatives`` items drawn uniformly (index 0 excluded)."""
        ids = tf.random.uniform([self._config.uniform_negatives], 1, self._num_items + 1, tf.int64)
        return {key: tf.gather(value, ids) for key, value in self._item_table.items()}

    @_not_converted
    def train_step(self, inputs):
        return super().train_step(inputs)

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_tower(inputs, training=training)
        candidates = {key: inputs[key] for key in CANDIDATE_FEATURES}
        extra = self._config.uniform_negatives
        if extra:
            negatives = self._uniform_negatives()
            candidates = {key: tf.concat([candidates[key], negatives[key]], axis=0)
                          for key in CANDIDATE_FEATURES}
        candidate = self.candidate_tower(candidates, training=training)
        ids = candidates[features.ITEM_IDX]
        kwargs = {}
        if self._config.logq_correction:
            # Chance of an item in the candidate pool: batch * q(item) from the batch's
            # interactions plus extra / n from the uniform draw (mixed negative sampling).
            batch = tf.cast(tf.shape(query)[0], tf.float32)
            kwargs["candidate_sampling_probability"] = (
                batch * tf.gather(self._item_probability, ids) + extra / self._num_items)
        if self._config.remove_accidental_hits:
            kwargs["candidate_ids"] = ids
        return self.task(query, candidate, compute_metrics=False, **kwargs)
