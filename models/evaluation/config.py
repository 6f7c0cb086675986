"""The evaluation section: held-out metrics and the push gate (models/evaluation/)."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from models.config import check


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the push gate.

    Attributes:
      cutoffs: the K of Recall@K and NDCG@K reported.
      gate_metric: the metric the blessing compares, e.g. 'recall@10'.
      min_lift_over_popularity: the model is blessed when its gate metric is at
        least this multiple of the popularity baseline's on the same split.
      batch_size: users scored per call of the servable.
    """

    cutoffs: Tuple[int, ...] = (10, 50, 100)
    gate_metric: str = "recall@10"
    min_lift_over_popularity: float = 1.0
    batch_size: int = 256

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (all(k > 0 for k in self.cutoffs), "evaluation.cutoffs must be positive"),
            (self.min_lift_over_popularity >= 0.0,
             "evaluation.min_lift_over_popularity must be >= 0"),
            (self.batch_size > 0, "evaluation.batch_size must be positive"),
        ])
