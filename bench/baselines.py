"""Classical baselines of the quality benchmark, fitted on what the pipeline was given.

EASE (Steck, WWW 2019) with its L2 weight tuned on an inner temporal split, and
implicit-feedback ALS (Hu, Koren and Volinsky, ICDM 2008; the ``implicit``
library) with its size and confidence tuned the same way. Both then refit on
all of the given interactions, as the pipeline's models are.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Set, Tuple

import numpy as np

from models import features
from models.data import splits
from models.evaluation import metrics

EASE_L2 = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
# (factors, alpha): the confidence of an observed interaction is 1 + alpha.
IALS_GRID = ((32, 1.0), (64, 1.0), (128, 1.0), (64, 10.0), (128, 10.0))


def inner_split(interactions: Dict[str, list], fraction: float = 0.2
                ) -> Tuple[Dict[str, Set[str]], Dict[str, Set[str]]]:
    """(seen, held-out) item sets per user of a temporal split of ``interactions``."""
    idx = splits.temporal_split(interactions, fraction)
    users, items = np.asarray(interactions[features.USER_ID]), np.asarray(interactions[features.ITEM_ID])
    seen = metrics.group_by_user(users[idx[features.TRAIN]], items[idx[features.TRAIN]])
    held = metrics.group_by_user(users[idx[features.EVAL]], items[idx[features.EVAL]])
    return seen, {u: items_ - seen.get(u, set()) for u, items_ in held.items()}


def _best(fit, grid, interactions: Dict[str, list]):
    """The setting of ``grid`` whose lists score the highest NDCG@10 on the inner split."""
    seen, held = inner_split(interactions)
    users = sorted(held)
    scores = {setting: metrics.mean_metrics(fit(seen, users, 10, setting), held, (10,), 1)["ndcg@10"]
              for setting in grid}
    return max(scores, key=scores.get), scores


def ease(interactions: Dict[str, list], seen: Mapping[str, Set[str]], users: Sequence[str],
         k: int) -> Tuple[Dict[str, List[str]], Dict[str, object]]:
    """EASE lists of ``users`` from ``seen``, L2 tuned on an inner split of ``interactions``."""
    def fit(seen_, users_, k_, l2):
        return metrics.ease_recommendations(seen_, users_, k_, l2)

    l2, tried = _best(fit, EASE_L2, interactions)
    return fit(seen, users, k, l2), {"l2": l2, "inner_ndcg@10": tried}


def ials_recommendations(seen: Mapping[str, Set[str]], users: Sequence[str], k: int,
                         setting: Tuple[int, float], seed: int = 0) -> Dict[str, List[str]]:
    """Implicit ALS (15 iterations, regularisation 0.05) lists, seen items excluded."""
    import scipy.sparse as sparse
    from implicit.als import AlternatingLeastSquares

    factors, alpha = setting
    items = sorted({i for s in seen.values() for i in s})
    column = {item: j for j, item in enumerate(items)}
    row_of = {user: r for r, user in enumerate(seen)}
    rows = [r for user, r in row_of.items() for _ in seen[user]]
    cols = [column[i] for user in row_of for i in seen[user]]
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(len(row_of), len(items)))
    model = AlternatingLeastSquares(factors=factors, regularization=0.05, alpha=alpha,
                                    iterations=15, random_state=seed)
    model.fit(matrix, show_progress=False)
    known = [u for u in users if u in row_of]
    if not known:
        return {}
    ids = np.array([row_of[u] for u in known])
    top, _ = model.recommend(ids, matrix[ids], N=min(k, len(items)), filter_already_liked_items=True)
    return {user: [items[j] for j in row if j >= 0] for user, row in zip(known, top)}


def ials(interactions: Dict[str, list], seen: Mapping[str, Set[str]], users: Sequence[str],
         k: int) -> Tuple[Dict[str, List[str]], Dict[str, object]]:
    """iALS lists of ``users`` from ``seen``, size and confidence tuned on an inner split."""
    setting, tried = _best(ials_recommendations, IALS_GRID, interactions)
    return (ials_recommendations(seen, users, k, setting),
            {"factors": setting[0], "alpha": setting[1],
             "inner_ndcg@10": {f"{f}x{a:g}": v for (f, a), v in tried.items()}})
