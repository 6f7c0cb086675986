"""Raw-feature plumbing shared by every servable that embeds a Transform graph.

The Transform graph was traced on joined interaction examples, so its layer
wants every raw feature. A query needs only user features and a candidate only
item features; the rest are filled with the "unknown" values the readers use,
and only the outputs that depend on the given features are read.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from models import features

_STRING_DEFAULTS = {features.USER_ID: features.UNKNOWN, features.ITEM_ID: features.UNKNOWN,
                    features.GENDER: features.UNKNOWN,
                    features.OCCUPATION: features.UNKNOWN, features.TITLE: features.UNKNOWN}
_INT_DEFAULTS = {features.AGE: features.UNKNOWN_NUMBER, features.YEAR: features.UNKNOWN_NUMBER,
                 features.TIMESTAMP: 0}

# Signature inputs of the servables: [batch] tensors; genres and history [batch, n]
# padded with "" (history oldest first); timestamp in the data's unit (seconds).
USER_SIGNATURE = {
    features.USER_ID: tf.TensorSpec([None], tf.string, features.USER_ID),
    features.AGE: tf.TensorSpec([None], tf.int64, features.AGE),
    features.GENDER: tf.TensorSpec([None], tf.string, features.GENDER),
    features.OCCUPATION: tf.TensorSpec([None], tf.string, features.OCCUPATION),
    features.HISTORY: tf.TensorSpec([None, None], tf.string, features.HISTORY),
    features.TIMESTAMP: tf.TensorSpec([None], tf.int64, features.TIMESTAMP),
}
ITEM_SIGNATURE = {
    features.ITEM_ID: tf.TensorSpec([None], tf.string, features.ITEM_ID),
    features.TITLE: tf.TensorSpec([None], tf.string, features.TITLE),
    features.GENRES: tf.TensorSpec([None, None], tf.string, features.GENRES),
    features.YEAR: tf.TensorSpec([None], tf.int64, features.YEAR),
    features.TAGS: tf.TensorSpec([None, None], tf.string, features.TAGS),
}


def complete(inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Turns [batch] signature inputs into the raw inputs of the Transform layer.

    Args:
      inputs: a subset of the raw features, each [batch] (genres and history
        [batch, n] strings, "" for padding).

    Returns:
      Every raw feature: fixed-length ones [batch, 1], genres and history
      SparseTensors.
    """
    batch = tf.shape(next(iter(inputs.values())))[0]
    out = {}
    for key, default in {**_STRING_DEFAULTS, **_INT_DEFAULTS}.items():
        value = inputs.get(key)
        if value is None:
            dtype = tf.string if key in _STRING_DEFAULTS else tf.int64
            value = tf.fill([batch], tf.constant(default, dtype))
        out[key] = tf.reshape(value, [-1, 1])
    out[features.RATING] = tf.zeros([batch, 1], tf.float32)
    for key in (features.GENRES, features.HISTORY, features.TAGS):
        values = inputs.get(key)
        if values is None:
            values = tf.fill([batch, 0], "")
        out[key] = tf.sparse.from_dense(values)
    return out
