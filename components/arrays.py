"""Small numpy helpers shared by the trainers and the index builder."""

from __future__ import annotations

from typing import List

import numpy as np


def runs(keys: np.ndarray, order: np.ndarray) -> List[np.ndarray]:
    """Splits ``order`` (row indices sorted by ``keys``) into runs of rows with equal key.

    Returns:
      One index array per distinct key, in ``order``'s order; [] for no rows.
    """
    if not len(order):
        return []
    ordered = keys[order]
    return np.split(order, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1)
