"""Where a model's holdout twin lives beside the model that is deployed.

A trained Model artifact holds the model to deploy in ``<uri>/Format-Serving``
(what the Pusher pushes: it learned from, and knows, every interaction the
pipeline was given) and, in ``<uri>/Holdout-Serving``, its twin that knows only
the train split: the one the held-out checks (early stopping, the ranker's
order check, the Evaluator's gate) score on the eval split, which it has never
seen. Without a twin (nothing was refitted), the deployed model is its own.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tfx.utils import path_utils

HOLDOUT = "Holdout-Serving"


def holdout_dir(serving_model_dir: str) -> str:
    """Where to write the holdout twin of the model written to ``serving_model_dir``
    (``<uri>/Format-Serving``)."""
    return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), HOLDOUT)


def holdout_path(model_uri: str) -> str:
    """The model a held-out check scores: the holdout twin when there is one, else the
    deployed model."""
    path = os.path.join(model_uri, HOLDOUT)
    return path if tf.io.gfile.isdir(path) else path_utils.serving_model_path(model_uri)
