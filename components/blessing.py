"""ModelBlessing artifacts in the stock Evaluator's format, which the stock Pusher reads."""

from __future__ import annotations

import os

import tensorflow as tf


def write(blessing, blessed: bool, model_uri: str, reason: str) -> None:
    """Marks ``blessing`` (a ModelBlessing artifact) for the model at ``model_uri``.

    The Pusher reads the integer property 'blessed'; the marker file
    (BLESSED / NOT_BLESSED, holding ``reason``) is the stock Evaluator's layout.
    """
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_string_custom_property("current_model", model_uri)
    blessing.set_string_custom_property("reason", reason)
    # Kubeflow hands a task output URIs whose folders do not exist yet (none on object stores).
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"),
                           "w") as f:
        f.write(reason)
