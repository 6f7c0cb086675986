"""The ranking model: a DCN-v2 scorer of retrieved candidate lists, and its losses.

Inputs are ``features.list_features`` of [batch, candidates] lists; the input
vector of a pair is [query * item, query, item, standardised scalars]. Two
cross layers (TFRS's DCN-v2 ``Cross``, low-rank) learn explicit feature
crosses, a ReLU tower on top of them the rest; one logit per pair.

Losses, on lists with at least one positive:
  pointwise: sigmoid cross-entropy of every (pair, label);
  listwise: softmax cross-entropy over each list (ListNet with 0/1 labels),
    which optimises the order within the list directly.
"""

from __future__ import annotations

from typing import Dict, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models.ranking import features as ranking_features

POINTWISE, LISTWISE = "pointwise", "listwise"
LOSSES = (POINTWISE, LISTWISE)


class Standardize(tf.keras.layers.Layer):
    """[..., s] -> (x - mean) / max(std, epsilon) per feature, as Keras's Normalization layer;
    the statistics are set once by ``adapt`` in plain TensorFlow ops (Keras's adapt loop is
    traced and converted by AutoGraph: about 5 s per trained ranker)."""

    def build(self, input_shape):
        width = input_shape[-1:]
        self.mean = self.add_weight(name="mean", shape=width, initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=width, initializer="ones",
                                        trainable=False)
        super().build(input_shape)

    def adapt(self, values: tf.Tensor) -> None:
        """Learns each feature's mean and variance from ``values`` [n, s]."""
        values = tf.convert_to_tensor(values, tf.float32)
        if not self.built:
            self.build(values.shape)
        self.mean.assign(tf.reduce_mean(values, axis=0))
        self.variance.assign(tf.math.reduce_variance(values, axis=0))

    def call(self, values: tf.Tensor) -> tf.Tensor:
        return (values - self.mean) / tf.maximum(tf.sqrt(self.variance), tf.keras.backend.epsilon())


class Ranker(tf.keras.Model):
    """{QUERY, ITEM: [b, c, d], SCALARS: [b, c, s]} -> logits [b, c]."""

    def __init__(self, hidden_units: Sequence[int], cross_layers: int, projection_dim: int):
        super().__init__(name="ranker")
        self.normalize = Standardize(name="scalar_normalization")
        self.crosses = [tfrs.layers.dcn.Cross(projection_dim=projection_dim or None,
                                              kernel_initializer="glorot_uniform")
                        for _ in range(cross_layers)]
        # Layers in a list, not a Sequential: a Sequential builds a functional graph of itself
        # at its first call (seconds of tracing for the same computation).
        self.deep = [tf.keras.layers.Dense(units, activation="relu") for units in hidden_units]
        self.deep.append(tf.keras.layers.Dense(1))

    def adapt(self, scalars: tf.Tensor) -> None:
        """Learns the scalar features' means and variances from training pairs [n, s]."""
        self.normalize.adapt(scalars)

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        query, item = inputs[ranking_features.QUERY], inputs[ranking_features.ITEM]
        shape = tf.shape(query)[:2]
        x0 = tf.concat([query * item, query, item, self.normalize(inputs[ranking_features.SCALARS])], axis=-1)
        x0 = tf.reshape(x0, [-1, x0.shape[-1]])
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        for layer in self.deep:
            x = layer(x)
        return tf.reshape(x, shape)


def pointwise_loss(labels: tf.Tensor, logits: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Mean sigmoid cross-entropy over the valid pairs of [b, c] lists."""
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    weights = tf.cast(valid, tf.float32)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def listwise_loss(labels: tf.Tensor, logits: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy of [b, c] lists against their normalised labels."""
    log_probs = tf.nn.log_softmax(tf.where(valid, logits, -1e9), axis=1)
    positives = tf.reduce_sum(labels, axis=1)
    targets = labels / tf.maximum(positives, 1.0)[:, None]
    per_list = -tf.reduce_sum(tf.where(valid, targets * log_probs, 0.0), axis=1)
    has_positive = tf.cast(positives > 0, tf.float32)
    return tf.reduce_sum(per_list * has_positive) / tf.maximum(tf.reduce_sum(has_positive), 1.0)


LOSS_FUNCTIONS = {POINTWISE: pointwise_loss, LISTWISE: listwise_loss}
