"""Raw-feature plumbing shared by every servable that embeds a Transform graph.

The Transform graph was traced on joined interaction examples, so its layer
wants every raw feature. A query needs only user features and a candidate only
item features; the rest are filled with the "unknown" values the readers use,
and only the outputs that depend on the given features are read.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from components import features as F

_STRING_DEFAULTS = {F.USER_ID: F.UNKNOWN, F.ITEM_ID: F.UNKNOWN, F.GENDER: F.UNKNOWN,
                    F.OCCUPATION: F.UNKNOWN, F.TITLE: F.UNKNOWN}
_INT_DEFAULTS = {F.AGE: F.UNKNOWN_NUMBER, F.YEAR: F.UNKNOWN_NUMBER, F.TIMESTAMP: 0}

# Signature inputs of the servables: [batch] tensors; genres and history [batch, n]
# padded with "" (history oldest first); timestamp in the data's unit (seconds).
USER_SIGNATURE = {
    F.USER_ID: tf.TensorSpec([None], tf.string, F.USER_ID),
    F.AGE: tf.TensorSpec([None], tf.int64, F.AGE),
    F.GENDER: tf.TensorSpec([None], tf.string, F.GENDER),
    F.OCCUPATION: tf.TensorSpec([None], tf.string, F.OCCUPATION),
    F.HISTORY: tf.TensorSpec([None, None], tf.string, F.HISTORY),
    F.TIMESTAMP: tf.TensorSpec([None], tf.int64, F.TIMESTAMP),
}
ITEM_SIGNATURE = {
    F.ITEM_ID: tf.TensorSpec([None], tf.string, F.ITEM_ID),
    F.TITLE: tf.TensorSpec([None], tf.string, F.TITLE),
    F.GENRES: tf.TensorSpec([None, None], tf.string, F.GENRES),
    F.YEAR: tf.TensorSpec([None], tf.int64, F.YEAR),
}


def complete(features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Turns [batch] signature inputs into the raw inputs of the Transform layer.

    Args:
      features: a subset of the raw features, each [batch] (genres and history
        [batch, n] strings, "" for padding).

    Returns:
      Every raw feature: fixed-length ones [batch, 1], genres and history
      SparseTensors.
    """
    batch = tf.shape(next(iter(features.values())))[0]
    out = {}
    for key, default in {**_STRING_DEFAULTS, **_INT_DEFAULTS}.items():
        value = features.get(key)
        if value is None:
            dtype = tf.string if key in _STRING_DEFAULTS else tf.int64
            value = tf.fill([batch], tf.constant(default, dtype))
        out[key] = tf.reshape(value, [-1, 1])
    out[F.RATING] = tf.zeros([batch, 1], tf.float32)
    for key in (F.GENRES, F.HISTORY):
        values = features.get(key)
        if values is None:
            values = tf.fill([batch, 0], "")
        out[key] = tf.sparse.from_dense(values)
    return out
