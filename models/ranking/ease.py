"""EASE's item-to-item weights, the recommender servable's second candidate source.

EASE (Steck, WWW 2019) scores a user's unseen items as x B, x the user's 0/1
row of interactions and B = I - P / diag(P), P = (X'X + l2 I)^-1: each item
the user interacted with adds its row of B. Its item-to-item weights carry
what the two-tower model misses on long-tail catalogues (items with a handful
of interactions, where an id embedding learns little), so the servable fuses
EASE's list with its own (recommender/servable.py). Each item keeps its ``m``
weights of largest size (sparse: n_items x m, not n_items x n_items), computed in
blocks of rows of P without forming P or B whole: from the items x items
inverse when there are fewer items than users, else from Woodbury's identity
P = (I - X' K X) / l2, K = (X X' + l2 I)^-1, whose inverse is users x users.
"""

from __future__ import annotations

from typing import Dict, Mapping, NamedTuple, Sequence, Set, Tuple

import numpy as np

from models.evaluation import metrics

# Weights kept per item, at most MAX_WEIGHTS in all (n_items x m int32 ids and float32
# weights in the servable: 80 MB at most).
NEIGHBOURS = 1000
MAX_WEIGHTS = 10_000_000
# The L2 weights tried (the paper's MovieLens settings are of the order of 500).
L2_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
# Rows of B computed at once are at most this many weights.
_BLOCK_WEIGHTS = 2 ** 24


class ItemWeights(NamedTuple):
    """Each item's EASE weights B[item, j] of largest size toward other items j.

    Attributes:
      ids: int32 [n_items, m], largest size first; -1 where an item has fewer.
      weights: float32 [n_items, m] (0 pads).
    """

    ids: np.ndarray
    weights: np.ndarray


def none(n_items: int) -> ItemWeights:
    """No weights: the servable serves its own list alone."""
    return ItemWeights(np.full((n_items, 1), -1, np.int32), np.zeros((n_items, 1), np.float32))


def matrix(users: np.ndarray, positions: np.ndarray, n_items: int):
    """(the dense 0/1 users x items matrix of interactions, positions -1 left out; the user
    of each of its rows)."""
    keep = np.asarray(positions) >= 0
    row_users, rows = np.unique(np.asarray(users)[keep], return_inverse=True)
    x = np.zeros((len(row_users), n_items), np.float64)
    x[rows, np.asarray(positions)[keep]] = 1.0
    return x, row_users


def width(n_items: int, m: int = NEIGHBOURS) -> int:
    """Weights kept per item of an ``n_items`` catalogue: ``m``, fewer where MAX_WEIGHTS
    would be exceeded, never fewer than 100."""
    return max(1, min(m, max(100, MAX_WEIGHTS // max(n_items, 1)), n_items - 1))


def fit(x: np.ndarray, l2: float, m: int = NEIGHBOURS) -> ItemWeights:
    """Each item's ``width(n_items, m)`` EASE weights of largest size, fitted on the 0/1
    matrix ``x``.

    By size, not the largest positive ones: the negative weights matter. On the long-tail
    benchmark shape's inner split (600 users, 6,000 items, l2 200), NDCG@10 was 0.2067 with
    every weight, 0.2053 with 1,000 of largest size, 0.2005 with 200, 0.1766 with the 200
    largest positive ones and 0.1784 with 1,000 of those."""
    n_users, n_items = x.shape
    k = width(n_items, m)
    ids = np.full((n_items, k), -1, np.int32)
    weights = np.zeros((n_items, k), np.float32)
    if n_items < 2 or not x.any():
        return ItemWeights(ids, weights)
    if n_items <= n_users:
        p = np.linalg.inv(x.T @ x + l2 * np.eye(n_items))
        diag = np.diag(p).copy()

        def p_rows(start, stop):
            return p[start:stop]
    else:
        kx = np.linalg.solve(x @ x.T + l2 * np.eye(n_users), x)  # K X
        diag = (1.0 - np.einsum("ui,ui->i", x, kx)) / l2

        def p_rows(start, stop):
            rows = -(x[:, start:stop].T @ kx)
            rows[np.arange(stop - start), np.arange(start, stop)] += 1.0
            return rows / l2

    step = max(1, _BLOCK_WEIGHTS // n_items)
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        b = -p_rows(start, stop) / diag[None, :]  # B[h, j] = -P[h, j] / P[j, j]
        b[np.arange(stop - start), np.arange(start, stop)] = 0.0
        size = np.abs(b)
        top = np.argpartition(-size, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(size, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        best = np.take_along_axis(b, top, axis=1)
        ids[start:stop] = np.where(best != 0, top, -1)
        weights[start:stop] = best
    return ItemWeights(ids, weights)


def sparse(item_weights: ItemWeights, n_items: int):
    """The kept weights as a sparse n_items x n_items matrix B (scipy CSR)."""
    import scipy.sparse

    valid = item_weights.ids >= 0
    rows = np.broadcast_to(np.arange(len(item_weights.ids))[:, None], valid.shape)[valid]
    return scipy.sparse.csr_matrix((item_weights.weights[valid], (rows, item_weights.ids[valid])),
                                   shape=(n_items, n_items))


def scores(item_weights: ItemWeights, rows: np.ndarray) -> np.ndarray:
    """EASE scores x B [b, n_items] of 0/1 rows x [b, n_items] from the kept weights (numpy; the
    servable computes the same in its graph)."""
    b = sparse(item_weights, rows.shape[1])
    return np.asarray(b.T.dot(rows.T).T)


def choose_l2(x: np.ndarray, held: Mapping[int, Set[int]], grid: Sequence[float] = L2_GRID,
              k: int = 10) -> Tuple[float, Dict[float, float]]:
    """The L2 of ``grid`` whose EASE scores (every weight: ``metrics.ease_scorer``, cheaper
    than ``fit``, which keeps the chosen one's largest) give the highest NDCG@k on ``held``.

    Args:
      x: the 0/1 users x items matrix it is fitted on.
      held: {row of x: the catalogue positions that user interacted with later}.

    Returns:
      (the best l2, {l2: NDCG@k}).
    """
    users = sorted(u for u, items in held.items() if items)
    tried = {}
    for l2 in grid:
        score = metrics.ease_scorer(x, l2)(x[users])
        score[x[users] > 0] = -np.inf
        name = f"ndcg@{k}"
        tried[l2] = float(np.mean([
            metrics.user_metrics(list(np.argsort(-s, kind="stable")[:k]), held[u], (k,))[name]
            for u, s in zip(users, score)])) if users else 0.0
    return max(tried, key=tried.get), tried
