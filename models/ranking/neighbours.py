"""Item-to-item neighbours from co-interactions (ItemKNN), a feature table of the ranker.

Cosine similarity of items' user sets, shrunk toward 0 for items with few
co-interactions (Sarwar et al., WWW 2001; the shrinkage of Koren's neighbourhood
models): sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink). Each item keeps
its ``m`` most similar items. The ranker reads, for each candidate, its
similarity to the items of the user's history: the collaborative signal that
item-item models such as EASE win on MovieLens with, next to the two-tower
scores. The table keeps the counts the similarity is computed from, so that a
training list can leave its own user out (ranking/features.py): counted in,
the user's own later items look more similar to their history than anything
a served list holds, and the ranker learns to over-trust the feature.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sparse

# Neighbours kept per item, and the shrinkage of the cosine.
NEIGHBOURS = 20
SHRINK = 10.0
# Dense co-occurrence rows are computed in blocks of at most this many scores.
_BLOCK_SCORES = 2 ** 24


class Neighbours(NamedTuple):
    """Each item's nearest items and what their similarity is computed from.

    Attributes:
      ids: int32 [n_items, m], most similar first; -1 where an item has fewer.
      cooccurrences: float32 [n_items, m], users who interacted with both (0 pads).
      counts: float32 [n_items], users who interacted with each item.
    """

    ids: np.ndarray
    cooccurrences: np.ndarray
    counts: np.ndarray


def none(n_items: int) -> Neighbours:
    """No neighbours for any item (a catalogue without co-interactions)."""
    return Neighbours(np.full((n_items, 1), -1, np.int32), np.zeros((n_items, 1), np.float32),
                      np.zeros(n_items, np.float32))


def item_neighbours(users: np.ndarray, positions: np.ndarray, n_items: int, m: int = NEIGHBOURS,
                    shrink: float = SHRINK) -> Neighbours:
    """Each item's ``m`` nearest items by shrunk cosine of their user sets.

    Args:
      users: [n] user ids of the interactions.
      positions: int [n] catalogue positions of their items (-1: outside the catalogue).
      n_items: catalogue size.
      m: neighbours kept per item.
      shrink: added to the cosine's denominator.
    """
    ids = np.full((n_items, m), -1, np.int32)
    cooccurrences = np.zeros((n_items, m), np.float32)
    keep = positions >= 0
    if not keep.any() or n_items < 2:
        return Neighbours(ids, cooccurrences, np.zeros(n_items, np.float32))
    rows = np.unique(np.asarray(users)[keep], return_inverse=True)[1]
    x = sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows, positions[keep])),
                          shape=(int(rows.max()) + 1, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
    xt = x.T.tocsr()
    norms = np.sqrt(counts)
    k = min(m, n_items - 1)
    step = max(1, _BLOCK_SCORES // n_items)
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        co = (xt[start:stop] @ x).toarray()
        co[np.arange(stop - start), np.arange(start, stop)] = 0.0
        similarity = co / (norms[start:stop, None] * norms[None, :] + shrink)
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_co = np.take_along_axis(co, top, axis=1)
        ids[start:stop, :k] = np.where(top_co > 0, top, -1)
        cooccurrences[start:stop, :k] = top_co
    return Neighbours(ids, cooccurrences, counts)
