"""Temporal train/eval splits of interactions.

The evaluation split is always later in time than the training data it is
compared with, so no model is scored on interactions that precede what it
learned from.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from models import features


def chronological_order(interactions: Dict[str, list]) -> np.ndarray:
    """Interaction indices sorted by (timestamp, original position): the order of every split."""
    timestamps = np.asarray(interactions[features.TIMESTAMP], dtype=np.int64)
    return np.lexsort((np.arange(len(timestamps)), timestamps))


class Histories:
    """Each interaction's history: the user's items before it in chronological order.

    Built in one pass (O(interactions) memory); ``of(i)`` slices, so nothing
    is copied per interaction until asked for.
    """

    def __init__(self, interactions: Dict[str, list], max_length: int):
        self._max = max_length
        self._items: Dict[str, List[str]] = {}
        self._place = np.zeros(len(interactions[features.USER_ID]), dtype=np.int64)
        self._users = interactions[features.USER_ID]
        for i in chronological_order(interactions):
            items = self._items.setdefault(self._users[i], [])
            self._place[i] = len(items)
            items.append(interactions[features.ITEM_ID][i])

    def timeline(self, user: str) -> List[str]:
        """All of ``user``'s items, oldest first ([] for a user without interactions)."""
        return list(self._items.get(user, []))

    def of(self, index: int) -> List[str]:
        """Up to ``max_length`` items preceding interaction ``index``, oldest first."""
        place = int(self._place[index])
        return self._items[self._users[index]][max(0, place - self._max):place]


def temporal_split(
    interactions: Dict[str, list], eval_fraction: float, strategy: str = "per_user"
) -> Dict[str, np.ndarray]:
    """Assigns each interaction to train or eval by time.

    Args:
      interactions: canonical columns; only user_id and timestamp are read.
      eval_fraction: per user ('per_user': the latest round(n * fraction), at
        least one, of every user with two or more interactions) or overall
        ('global': everything after the (1 - fraction) time quantile).
      strategy: 'per_user' or 'global'.

    Returns:
      {'train': indices, 'eval': indices} into the interaction columns, each
      sorted by (timestamp, original position).

    Raises:
      ValueError: unknown strategy.
    """
    timestamps = np.asarray(interactions[features.TIMESTAMP], dtype=np.int64)
    order = chronological_order(interactions)
    is_eval = np.zeros(len(timestamps), dtype=bool)
    if strategy == "global":
        cut = np.quantile(timestamps, 1.0 - eval_fraction)
        is_eval = timestamps > cut
    elif strategy == "per_user":
        by_user: Dict[str, List[int]] = {}
        for position in order:
            by_user.setdefault(interactions[features.USER_ID][position], []).append(position)
        for positions in by_user.values():
            n = len(positions)
            if n < 2:
                continue
            n_eval = max(1, int(round(n * eval_fraction)))
            is_eval[positions[n - n_eval:]] = True
    else:
        raise ValueError(f"split strategy must be 'per_user' or 'global', got '{strategy}'")
    return {features.TRAIN: order[~is_eval[order]], features.EVAL: order[is_eval[order]]}
