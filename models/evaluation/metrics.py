"""Top-K metrics and the baselines every model is compared with.

Pure numpy: no TensorFlow, no TFX. Conventions (those of the issue tracker's
MovieLens table): all items are ranked, each user's training items are
excluded, relevance is binary (held-out interaction or not).
  Recall@K = hits in the top K / number of held-out items of the user.
  NDCG@K   = DCG of the top K / DCG of an ideal list of min(K, held-out) hits.
  HR@K     = 1 if any hit in the top K.
  MAP@K    = mean over hits in the top K of precision at the hit's rank, divided by
             min(K, held-out) (average precision).
  MRR      = 1 / rank of the first hit (0 if none in the list).
List qualities that need no held-out data (``list_qualities``):
  diversity@K = mean over pairs of the top K of 1 - Jaccard(genres) (intra-list diversity).
  novelty@K   = mean over the top K of -log2(share of training interactions), items never
                interacted with counted once (Zhou et al. 2010's self-information).
Figures are means over users with at least one held-out item.
"""

from __future__ import annotations

import collections
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set

import numpy as np


def user_metrics(ranked: Sequence[str], relevant: Set[str], cutoffs: Iterable[int]) -> Dict[str, float]:
    """Metrics of one ranked list against one user's held-out items.

    Args:
      ranked: item ids, best first.
      relevant: held-out item ids (non-empty).
      cutoffs: the K values.

    Returns:
      {'recall@K', 'ndcg@K', 'hr@K', 'map@K' for each K, and 'mrr'}.
    """
    hits = np.array([item in relevant for item in ranked], dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, len(hits) + 2))
    out = {}
    for k in cutoffs:
        top = hits[:k]
        ideal = discounts[: min(k, len(relevant))].sum()
        out[f"recall@{k}"] = top.sum() / len(relevant)
        out[f"ndcg@{k}"] = float((top * discounts[:k][: len(top)]).sum() / ideal) if ideal else 0.0
        out[f"hr@{k}"] = float(top.any())
        precision = np.cumsum(top) / np.arange(1, len(top) + 1)
        out[f"map@{k}"] = float((precision * top).sum() / min(k, len(relevant)))
    first = np.flatnonzero(hits)
    out["mrr"] = 1.0 / (first[0] + 1) if len(first) else 0.0
    return out


def mean_metrics(
    recommendations: Mapping[str, Sequence[str]],
    held_out: Mapping[str, Set[str]],
    cutoffs: Iterable[int],
    num_items: int,
) -> Dict[str, float]:
    """Averages user_metrics over the users of ``held_out`` and adds coverage.

    A user of ``held_out`` without recommendations counts as all misses.

    Returns:
      Mean of every user metric, 'users' (how many were scored) and
      'coverage@K' (share of the catalogue appearing in anyone's top K, for the
      smallest K).
    """
    cutoffs = sorted(cutoffs)
    totals: Dict[str, float] = {}
    shown: Set[str] = set()
    users = [u for u, items in held_out.items() if items]
    for user in users:
        ranked = list(recommendations.get(user, []))
        shown.update(ranked[: cutoffs[0]])
        for key, value in user_metrics(ranked, held_out[user], cutoffs).items():
            totals[key] = totals.get(key, 0.0) + value
    out = {key: value / max(len(users), 1) for key, value in totals.items()}
    out[f"coverage@{cutoffs[0]}"] = len(shown) / max(num_items, 1)
    out["users"] = float(len(users))
    return out


def list_qualities(recommendations: Mapping[str, Sequence[str]], users: Iterable[str], k: int,
                   genres: Mapping[str, Set[str]], counts: Mapping[str, int]) -> Dict[str, float]:
    """Mean intra-list diversity and novelty of the top ``k`` of each user's list.

    Args:
      recommendations: {user: item ids best first}.
      users: the users averaged over (those without a list are left out).
      k: the cutoff.
      genres: each item's genres (items without any are unlike every item).
      counts: training interactions per item.
    """
    total = max(sum(counts.values()), 1)
    diversity, novelty, n = 0.0, 0.0, 0
    for user in users:
        top = list(recommendations.get(user, []))[:k]
        if not top:
            continue
        n += 1
        novelty += float(np.mean([-np.log2(max(counts.get(i, 0), 1) / total) for i in top]))
        pairs = [(a, b) for j, a in enumerate(top) for b in top[j + 1:]]
        if pairs:
            diversity += float(np.mean([1.0 - _jaccard(genres.get(a, set()), genres.get(b, set()))
                                        for a, b in pairs]))
    return {f"diversity@{k}": diversity / max(n, 1), f"novelty@{k}": novelty / max(n, 1)}


def _jaccard(a: Set[str], b: Set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def group_by_user(user_ids: Sequence[str], item_ids: Sequence[str]) -> Dict[str, Set[str]]:
    """{user: set of items} of parallel id sequences."""
    out: Dict[str, Set[str]] = {}
    for user, item in zip(user_ids, item_ids):
        out.setdefault(user, set()).add(item)
    return out


def item_counts(train_items: Iterable[str]) -> Dict[str, int]:
    """{item: its interactions} of a sequence of interacted item ids."""
    return dict(collections.Counter(train_items))


def popularity_ranking(train_items: Sequence[str]) -> List[str]:
    """All items seen in training, most interacted-with first (ties by id)."""
    counts = item_counts(train_items)
    return sorted(counts, key=lambda i: (-counts[i], i))


def popularity_recommendations(
    ranking: Sequence[str], seen: Mapping[str, Set[str]], users: Iterable[str], k: int
) -> Dict[str, List[str]]:
    """The k most popular items each user has not interacted with in training."""
    out = {}
    for user in users:
        exclude = seen.get(user, set())
        top: List[str] = []
        for item in ranking:
            if item not in exclude:
                top.append(item)
                if len(top) == k:
                    break
        out[user] = top
    return out


# EASE is fitted when the smaller side of the users x items matrix is at most this (its inverse
# is that side squared) and the dense matrix has at most this many cells (8 bytes a cell).
EASE_MAX_SIZE = 5000
EASE_MAX_CELLS = 100_000_000


def ease_fits(n_users: int, n_items: int, max_size: int = EASE_MAX_SIZE,
              max_cells: int = EASE_MAX_CELLS) -> bool:
    """Whether EASE is fitted on a users x items matrix of this size."""
    return min(n_users, n_items) <= max_size and n_users * n_items <= max_cells


def ease_scorer(x: np.ndarray, l2: float, dual: Optional[bool] = None):
    """EASE (Steck, WWW 2019) fitted on the user x item matrix ``x``: a function from rows of
    ``x`` to their scores x B, B = I - P / diag(P), P = (X'X + l2 I)^-1.

    x B = x - (x P) / diag(P) never needs B itself. The dual form (``dual``; None: when there
    are more items than users) takes P from Woodbury's identity, P = (I - X' K X) / l2 with
    K = (X X' + l2 I)^-1: the inverse is users x users and no items x items matrix is formed,
    for the same scores (tests/unit/test_metrics.py).
    """
    users, items = x.shape
    if not (items > users if dual is None else dual):
        p = np.linalg.inv(x.T @ x + l2 * np.eye(items))
        diag = np.diag(p).copy()
        return lambda rows: rows - (rows @ p) / diag
    kx = np.linalg.solve(x @ x.T + l2 * np.eye(users), x)  # K X
    diag = (1.0 - np.einsum("ui,ui->i", x, kx)) / l2
    return lambda rows: rows - ((rows - (rows @ x.T) @ kx) / l2) / diag


def interaction_matrix(seen: Mapping[str, Set[str]]):
    """The dense 0/1 users x items matrix X of ``seen``.

    Returns:
      (X float64 [users, items], the items of its columns (sorted), {user: its row}).
    """
    items = sorted({i for s in seen.values() for i in s})
    index = {item: j for j, item in enumerate(items)}
    row_of = {user: r for r, user in enumerate(seen)}
    x = np.zeros((len(seen), len(items)), dtype=np.float64)
    for user, r in row_of.items():
        x[r, [index[i] for i in seen[user]]] = 1.0
    return x, items, row_of


def ease_recommendations(
    seen: Mapping[str, Set[str]], users: Iterable[str], k: int, l2: float = 500.0,
    batch: int = 256, dual: Optional[bool] = None
) -> Dict[str, List[str]]:
    """EASE's top-k lists (``ease_scorer``; the inverse is of the smaller side, users or items).

    Args:
      seen: training items of each user (the rows of X).
      users: users to recommend for; users absent from ``seen`` get nothing.
      k: list length.
      l2: ridge penalty (500 is the paper's MovieLens setting order).
      batch: users scored per matrix product.
      dual: ``ease_scorer``'s form (None: the smaller side's inverse).

    Returns:
      {user: top-k items, training items excluded}.
    """
    x, items, row_of = interaction_matrix(seen)
    score = ease_scorer(x, l2, dual)
    asked = [user for user in users if user in row_of]
    out = {}
    for start in range(0, len(asked), batch):
        chunk = asked[start:start + batch]
        rows = x[[row_of[user] for user in chunk]]
        scores = score(rows)
        scores[rows > 0] = -np.inf
        for user, row in zip(chunk, scores):
            top = np.argpartition(-row, min(k, len(items) - 1))[:k]
            out[user] = [items[j] for j in top[np.argsort(-row[top])]]
    return out
