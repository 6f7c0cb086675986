"""Where the warm-start states of a run's models live (models/retrieval/warm.py,
models/ranking/warm.py).

A trained Model artifact holds its states beside its exports, in ``<uri>/warm_start/deployed/``
(the model that is pushed) and ``<uri>/warm_start/holdout/`` (its holdout twin); the index
carries the retrieval states on, and the assembly puts both models' states into the push's
``assets.extra/warm_start/`` (recommender/baseline.py), where the next run finds them.
"""

from __future__ import annotations

import os

ARTIFACT_DIR = "warm_start"
# The two states of a run: the deployed (refitted) model's, and its holdout twin's.
DEPLOYED, HOLDOUT = "deployed", "holdout"
RETRIEVAL_FILES = ("retrieval.npz", "retrieval.json")
RANKER = "ranker.npz"
# The served ranker's state, handed on by the retrieval trainer beside its own state when the
# retrieval model started from the served one (the ranker reads its embeddings).
SERVED_RANKER = "served_ranker.npz"


def beside(model_dir: str) -> str:
    """The states folder of the Model artifact whose export is ``model_dir``
    (``<uri>/Format-Serving`` or ``<uri>/Holdout-Serving``)."""
    return os.path.join(os.path.dirname(model_dir.rstrip("/")), ARTIFACT_DIR)
