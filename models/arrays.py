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


def to_bytes(values) -> np.ndarray:
    """UTF-8 bytes of every string of ``values`` (bytes pass through), same shape, dtype object.

    numpy's own ``astype(bytes)`` encodes as ASCII and fails on 'Misérables'.
    """
    array = np.asarray(values, dtype=object)
    flat = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape)


def to_str(values) -> np.ndarray:
    """Unicode strings of UTF-8 bytes (str passes through), same shape, dtype str.

    numpy's own ``astype(str)`` on bytes decodes as ASCII.
    """
    array = np.asarray(values, dtype=object)
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    return np.array(flat, dtype=str).reshape(array.shape) if flat else np.zeros(array.shape, str)
