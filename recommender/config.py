"""The re-ranking section: business rules the recommender servable applies (recommender/rerank.py)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from models.config import check

MODEL_NAME = "recommender"  # the model's folder under a serving directory (TF Serving's model name)


# The weights of the second list tried on the eval split (RerankConfig.ease_weight and
# popularity_weight None).
EASE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 0.9)


def base_of(serving_dir: str) -> str:
    """The versions' base directory of the recommender under ``serving_dir``."""
    return f"{serving_dir.rstrip('/')}/{MODEL_NAME}"


@dataclasses.dataclass(frozen=True)
class RerankConfig:
    """Business rules the servable applies to the ranked list (recommender/rerank.py).

    Items the user interacted with in training, the request's history and its
    exclusion list are never returned (retrieval leaves them out).

    Attributes:
      dislike_rating: ratings at or below this mark an item as disliked
        (MovieLens: 1-5 stars).
      dislike_similarity: candidates whose item-embedding cosine similarity to
        one of the user's disliked items reaches this are demoted behind all
        other candidates (1.0: off; the disliked items themselves are consumed
        and never returned).
      diversity: MMR trade-off in [0, 1): each next item maximises
        (1 - diversity) * relevance - diversity * max similarity to the items
        already chosen; 0 keeps the ranker's order.
      freshness_boost: added to the relevance (ranker scores min-max scaled to
        [0, 1] per list) times exp(-days since the item's first interaction / 30).
      max_k: the largest list a request may ask for (at most the index's
        candidates).
      ease_weight: the share of EASE's list (models/ranking/ease.py) in the list the
        rules start from: the ranked list and EASE's, fused by their min-max
        scaled scores (recommender/servable.py), in [0, 1); 0 serves the
        ranked list alone. None: the weight of EASE_WEIGHTS whose lists score
        the highest NDCG@10 on the eval split (the holdout model's, as the
        ranker is chosen). EASE is fitted only where ``metrics.ease_fits``.
      ease_l2: EASE's L2 weight; None: the one of models/ranking/ease.py's L2_GRID
        that scores the highest NDCG@10 on the eval split.
      popularity_weight: for requests with no known user and no history
        (demographics only, where EASE has nothing to read), the popularity
        list's share, fused the same way, in [0, 1). None: the weight of
        EASE_WEIGHTS whose lists score the highest NDCG@10 when the eval
        split's users are asked by their demographics alone.
    """

    dislike_rating: float = 2.0
    dislike_similarity: float = 0.9
    diversity: float = 0.0
    freshness_boost: float = 0.0
    max_k: int = 100
    ease_weight: Optional[float] = None
    ease_l2: Optional[float] = None
    popularity_weight: Optional[float] = None

    def for_list(self, top_k: int) -> "RerankConfig":
        """These rules for served lists of ``top_k`` items: a request may ask for top_k."""
        return dataclasses.replace(self, max_k=max(self.max_k, top_k))

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (0.0 <= self.diversity < 1.0, "rerank.diversity must be in [0, 1)"),
            (self.freshness_boost >= 0.0, "rerank.freshness_boost must be >= 0"),
            (-1.0 <= self.dislike_similarity <= 1.0, "rerank.dislike_similarity must be in [-1, 1]"),
            (self.ease_weight is None or 0.0 <= self.ease_weight < 1.0,
             "rerank.ease_weight must be in [0, 1) (or None: chosen on the eval split)"),
            (self.popularity_weight is None or 0.0 <= self.popularity_weight < 1.0,
             "rerank.popularity_weight must be in [0, 1) (or None: chosen on the eval split)"),
            (self.ease_l2 is None or self.ease_l2 > 0.0,
             "rerank.ease_l2 must be positive (or None: chosen on the eval split)"),
        ])


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """How a blessed model is published to the serving directory (recommender/versions.py).

    Attributes:
      keep_versions: complete versions kept under the serving directory, the new
        one included; older ones are deleted after a push (0: keep all). Keeping
        more than one lets ``recsys rollback`` serve an earlier model again.
    """

    keep_versions: int = 5

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([(self.keep_versions >= 0, "push.keep_versions must be >= 0")])
