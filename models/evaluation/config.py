"""The evaluation section: held-out metrics and the push gate (models/evaluation/)."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from models.config import check
from models.evaluation import metrics


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the push gate.

    Attributes:
      cutoffs: the K of Recall@K and NDCG@K reported.
      gate_metric: the metric the blessing compares, e.g. 'recall@10'.
      min_lift_over_popularity: the model is blessed when its gate metric is at
        least this multiple of the popularity baseline's on the same split. Above 1, so
        that a model no better than popularity (a copy of it has lift 1.0) is never
        pushed; 1.1 leaves room for what trained models reach (the README's "The push
        gate" gives the lifts measured for the default data, the test data and a weak model).
      batch_size: users scored per call of the servable.
      max_drop_vs_served: the model is blessed only when its gate metric is at least
        (1 - this) times the served model's, both scored on this run's eval split
        (skipped when nothing is served yet).
      requests: eval users whose retrieved lists become the stock Evaluator's
        (request, candidate) examples (a deterministic sample when there are more). TFMA
        spends about 1 ms of Python per example and slice set (2.5 ms with the five slicings):
        943 requests x 50 candidates took 117 s on the default data, 300 x 50 take 36 s. Both
        models are scored on the same sampled requests, so the change threshold compares
        paired figures.
      candidates_per_request: candidates of each retrieved list in those examples.
      ndcg_k: the K of the stock Evaluator's NDCG gate.
      min_ndcg: NDCG@ndcg_k (over the retrieved candidates) the model must reach.
      min_auc: AUC (held-out candidates against the other retrieved ones) it must reach; 0.5
        is a random order of the retrieved list (a model's own top-50 is hard to order: a
        4-epoch model on MovieLens-100K-shaped data reached 0.547 while beating popularity).
      max_ndcg_drop: how far NDCG@ndcg_k may fall below the served model's (absolute).
      ease_max_size, ease_max_cells: EASE is scored beside popularity when the smaller of
        the training users and items is at most ``ease_max_size`` (its inverse is that side
        squared: items x items, or users x users in the dual form) and users x items is at
        most ``ease_max_cells`` (the dense interaction matrix, 8 bytes a cell).
    """

    cutoffs: Tuple[int, ...] = (10, 50, 100)
    gate_metric: str = "recall@10"
    min_lift_over_popularity: float = 1.1
    batch_size: int = 256
    max_drop_vs_served: float = 0.05
    requests: int = 300
    candidates_per_request: int = 50
    ndcg_k: int = 10
    min_ndcg: float = 0.05
    min_auc: float = 0.5
    max_ndcg_drop: float = 0.01
    ease_max_size: int = metrics.EASE_MAX_SIZE
    ease_max_cells: int = metrics.EASE_MAX_CELLS

    def for_list(self, top_k: int) -> "EvalConfig":
        """This section for served lists of ``top_k`` items: the cutoffs include top_k, and a
        list shorter than 10 is gated on recall@top_k."""
        out = dataclasses.replace(self, cutoffs=tuple(sorted({10, 50, 100, top_k})))
        return dataclasses.replace(out, gate_metric=f"recall@{top_k}") if top_k < 10 else out

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (all(k > 0 for k in self.cutoffs), "evaluation.cutoffs must be positive"),
            (self.min_lift_over_popularity >= 0.0,
             "evaluation.min_lift_over_popularity must be >= 0"),
            (self.batch_size > 0, "evaluation.batch_size must be positive"),
            (0.0 <= self.max_drop_vs_served <= 1.0,
             "evaluation.max_drop_vs_served must be in [0, 1]"),
            (self.requests > 0, "evaluation.requests must be positive"),
            (self.candidates_per_request > 1, "evaluation.candidates_per_request must be > 1"),
            (0 < self.ndcg_k <= self.candidates_per_request,
             "evaluation.ndcg_k must be in [1, evaluation.candidates_per_request]"),
            (0.0 <= self.min_ndcg <= 1.0, "evaluation.min_ndcg must be in [0, 1]"),
            (0.0 <= self.min_auc <= 1.0, "evaluation.min_auc must be in [0, 1]"),
            (self.max_ndcg_drop >= 0.0, "evaluation.max_ndcg_drop must be >= 0"),
        ])
