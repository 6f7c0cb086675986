"""The ranking section: the ranker and its training lists (models/ranking/)."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from models.config import check


@dataclasses.dataclass(frozen=True)
class RankingConfig:
    """The ranking model that re-scores retrieved candidates, and its training lists.

    Attributes:
      loss: 'pointwise' (sigmoid cross-entropy per pair) or 'listwise'
        (softmax cross-entropy per list). Pointwise is the default: on the
        embedded data it lifted held-out NDCG@10 over retrieval order more
        in every paired comparison (README, "The ranking model").
      cross_layers: DCN-v2 cross layers; projection_dim: their low-rank size
        (0: full-rank).
      hidden_units: sizes of the ReLU tower on top of the cross layers.
      epochs, batch_size (lists per step), learning_rate: optimisation (Adam).
      warm_epochs: epochs of a ranker that starts from the served one's weights (when the
        retrieval model started from the served one: models/ranking/warm.py).
      anchor_fractions: where each user's training timeline is cut into a
        (history, next window) training list.
      label_window: share of the user's interactions after an anchor that
        are the list's positives (the eval split's share, by default).
      min_interactions: users with fewer training interactions give no list.
      neighbours: item-to-item neighbours per item behind the ranker's
        co-interaction features (ranking/neighbours.py); 0 turns them off
        (the features are then 0). Off by default: on the embedded data they
        lowered the ranker's held-out NDCG@10 (README, "The ranking model").
      seed: sampling and initialisation seed.
    """

    loss: str = "pointwise"
    cross_layers: int = 2
    projection_dim: int = 32
    hidden_units: Tuple[int, ...] = (128, 64)
    epochs: int = 6
    warm_epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 0.001
    anchor_fractions: Tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8)
    label_window: float = 0.2
    min_interactions: int = 5
    neighbours: int = 0
    seed: int = 43

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (self.epochs > 0, "ranking.epochs must be positive"),
            (self.warm_epochs >= 0, "ranking.warm_epochs must be >= 0"),
            (self.loss in ("listwise", "pointwise"), "ranking.loss must be 'listwise' or 'pointwise'"),
            (all(0.0 < f < 1.0 for f in self.anchor_fractions) and 0.0 < self.label_window < 1.0,
             "ranking.anchor_fractions and label_window must be in (0, 1)"),
            (self.neighbours >= 0, "ranking.neighbours must be >= 0"),
        ])
