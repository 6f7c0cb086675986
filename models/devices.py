"""The devices training runs on: every visible GPU, with memory growth, or the CPU.

``strategy()`` is called by the trainers before they build a model: with several GPUs a
``MirroredStrategy`` (one replica per GPU, gradients all-reduced), with one GPU or none the default
strategy (TensorFlow places ops on the GPU when there is one). Memory growth keeps TensorFlow from
taking a whole GPU's memory at start, so a pod's other processes (Beam workers) can share it.
"""

from __future__ import annotations

import logging
from typing import List

import tensorflow as tf


def gpus() -> List[str]:
    """Names of the visible GPUs, with memory growth turned on for each."""
    found = tf.config.list_physical_devices("GPU")
    for gpu in found:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the runtime is already initialised: the setting stays as it was
            pass
    return [gpu.name for gpu in found]


def strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over every GPU when there are several, else the default strategy."""
    names = gpus()
    if len(names) > 1:
        logging.info("Training on %d GPUs with MirroredStrategy: %s", len(names), names)
        return tf.distribute.MirroredStrategy()
    logging.info("Training on %s", names[0] if names else "the CPU (no GPU visible)")
    return tf.distribute.get_strategy()
