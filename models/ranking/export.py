"""The ranking Trainer's export: the ranker as a scoring function, and what it was trained with.

The RankingTrainer writes, in each of its model folders (``Format-Serving``
and the holdout twin), ``ranker.json`` (whether the ranker beat retrieval's
order on held-out data, and the settings its features depend on) and, when a
ranker was trained, a SavedModel whose ``score`` function takes
``features.list_features`` of [batch, candidates] lists. The recommender
assembly (``recommender/assembly.py``) reads both back with ``load``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Tuple

import tensorflow as tf

from models.ranking.features import ITEM, QUERY, SCALAR_NAMES, SCALARS

CARD_FILE = "ranker.json"


@dataclasses.dataclass(frozen=True)
class RankerCard:
    """What the recommender needs to know of a trained ranker.

    Attributes:
      use_ranker: the ranker beat retrieval's order on the eval split (False:
        the recommender serves retrieval's order).
      neighbours: item-to-item neighbours per item its features were computed
        with (RankingConfig.neighbours).
      loss: the loss it was trained with (for the record).
    """

    use_ranker: bool
    neighbours: int = 0
    loss: str = ""


class _Untracked:
    """The Keras ranker the saved function calls, held where tf.Module does not track it."""

    __slots__ = ("ranker",)

    def __init__(self, ranker):
        self.ranker = ranker


class ScoringRanker(tf.Module):
    """A trained ranker with one saved function: ``score(features) -> logits [b, c]``.

    The SavedModel holds the ranker's variables and ``score``, not the Keras model (whose
    saving traces and writes every layer's call functions that no loader uses).

    Args:
      ranker: a trained ``models.ranking.model.Ranker``.
      dim: the embedding size of the query and item features.
    """

    def __init__(self, ranker, dim: int):
        super().__init__()
        self._keras = _Untracked(ranker)
        spec = {QUERY: tf.TensorSpec([None, None, dim], tf.float32),
                ITEM: tf.TensorSpec([None, None, dim], tf.float32),
                SCALARS: tf.TensorSpec([None, None, len(SCALAR_NAMES)], tf.float32)}
        self.score = tf.function(lambda inputs: self._keras.ranker(inputs), input_signature=[spec],
                                 autograph=False)
        if not ranker.variables:
            # A ranker that never saw a batch creates its variables in its first call: here.
            # A trained one is traced by the save alone (a trace made before it is made again).
            self.score.get_concrete_function()
        self.ranker_variables = list(ranker.variables)


def save(ranker, dim: int, card: RankerCard, export_dir: str) -> None:
    """Writes ``card`` and, given a ranker, its scoring SavedModel to ``export_dir``."""
    tf.io.gfile.makedirs(export_dir)
    if ranker is not None:
        tf.saved_model.save(ScoringRanker(ranker, dim), export_dir)
    with tf.io.gfile.GFile(os.path.join(export_dir, CARD_FILE), "w") as f:
        json.dump(dataclasses.asdict(card), f, indent=2)


def load(export_dir: str) -> Tuple[Optional[object], RankerCard]:
    """(the loaded ranker with its ``score`` function or None, its card) of ``export_dir``.

    Raises:
      FileNotFoundError: ``export_dir`` holds no ranker card (not a RankingTrainer export).
    """
    path = os.path.join(export_dir, CARD_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no {CARD_FILE} in {export_dir}: not a ranking Trainer export")
    with tf.io.gfile.GFile(path) as f:
        card = RankerCard(**json.load(f))
    has_model = tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb"))
    return (tf.saved_model.load(export_dir) if has_model else None), card
