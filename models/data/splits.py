"""Temporal train/eval splits of interactions.

The evaluation split is always later in time than the training data it is
compared with, so no model is scored on interactions that precede what it
learned from.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

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


STRATEGIES = ("per_user", "global")


def held_out(timestamps: Sequence[int], eval_fraction: float, strategy: str,
             cut: Optional[float] = None) -> List[bool]:
    """The temporal split rule, for one user's interactions in chronological order.

    Both readers call this: the in-memory one (``temporal_split``) and the ExampleGens' Beam
    timelines (``models.data.beam.timelines``), so a row lands in the same split in both.

    Args:
      timestamps: the user's interactions' times, oldest first.
      eval_fraction: 'per_user': the latest round(n * fraction), at least one, of a user
        with two or more interactions are held out; 'global': see ``cut``.
      strategy: 'per_user' or 'global'.
      cut: 'global' only: the time after which everything is held out (``global_cut``).

    Returns:
      One bool per interaction: True for the eval split.

    Raises:
      ValueError: unknown strategy.
    """
    if strategy == "global":
        return [timestamp > cut for timestamp in timestamps]
    if strategy == "per_user":
        n = len(timestamps)
        n_eval = max(1, int(round(n * eval_fraction))) if n >= 2 else 0
        return [k >= n - n_eval for k in range(n)]
    raise ValueError(f"split strategy must be 'per_user' or 'global', got '{strategy}'")


def global_cut(timestamps: Sequence[int], eval_fraction: float) -> float:
    """The 'global' split's time cut: the (1 - eval_fraction) quantile of all interactions'
    times (numpy's linear interpolation); 0.0 without interactions."""
    values = np.asarray(timestamps, dtype=np.int64)
    return float(np.quantile(values, 1.0 - eval_fraction)) if len(values) else 0.0


def temporal_split(
    interactions: Dict[str, list], eval_fraction: float, strategy: str = "per_user"
) -> Dict[str, np.ndarray]:
    """Assigns each interaction to train or eval by time (the rule: ``held_out``).

    Args:
      interactions: canonical columns; only user_id and timestamp are read.
      eval_fraction: per user ('per_user') or overall ('global'), see ``held_out``.
      strategy: 'per_user' or 'global'.

    Returns:
      {'train': indices, 'eval': indices} into the interaction columns, each
      sorted by (timestamp, original position).

    Raises:
      ValueError: unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"split strategy must be 'per_user' or 'global', got '{strategy}'")
    timestamps = np.asarray(interactions[features.TIMESTAMP], dtype=np.int64)
    order = chronological_order(interactions)
    cut = global_cut(timestamps, eval_fraction) if strategy == "global" else None
    by_user: Dict[str, List[int]] = {}
    for position in order:
        by_user.setdefault(interactions[features.USER_ID][position], []).append(position)
    is_eval = np.zeros(len(timestamps), dtype=bool)
    for positions in by_user.values():
        is_eval[positions] = held_out(timestamps[positions], eval_fraction, strategy, cut)
    return {features.TRAIN: order[~is_eval[order]], features.EVAL: order[is_eval[order]]}
