"""Index evaluation: an index against exact search on sampled queries, and its blessing.

The pattern of Google's bqml-scann IndexEvaluator: the same queries go to the
index and to an exact dot-product search (NumPy, independent of the index's
code); Recall@k is the share of the exact top k the index returns in its top
k. Latency is measured query by query (percentiles) and in batches
(throughput) on the index as built, from Python, eagerly.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

Search = Callable[[tf.Tensor, int], tuple]


def exact_top_k(item_vectors: np.ndarray, queries: np.ndarray, k: int,
                batch_size: int = 256) -> np.ndarray:
    """Positions [q, k] of the k highest dot products of each query, best first.

    Queries go in batches whose score matrix stays under 2**25 floats (128 MB),
    so a million-item catalogue is searched 32 queries at a time.
    """
    k = min(k, item_vectors.shape[0])
    batch_size = max(1, min(batch_size, 2**25 // item_vectors.shape[0]))
    out = np.empty((queries.shape[0], k), np.int64)
    for start in range(0, queries.shape[0], batch_size):
        scores = queries[start:start + batch_size] @ item_vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + batch_size] = np.take_along_axis(top, order, axis=1)
    return out


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of each row's exact top k found in the row's top k."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def latency_ms(call: Callable[[object], object], inputs: Sequence[object]) -> Dict[str, float]:
    """Percentiles p50/p90/p99 (ms) of ``call`` on each input in turn; one warm-up call first."""
    call(inputs[0])
    seconds = []
    for item in inputs:
        start = time.perf_counter()
        call(item)
        seconds.append(time.perf_counter() - start)
    ms = np.asarray(seconds) * 1000.0
    return {f"p{p}": round(float(np.percentile(ms, p)), 4) for p in (50, 90, 99)}


def single_latency(search: Search, queries: np.ndarray, k: int) -> Dict[str, float]:
    """Percentiles (ms) of one-query calls of ``search``."""
    return latency_ms(lambda query: np.asarray(search(query, k)[1]),
                      [tf.constant(queries[i:i + 1]) for i in range(queries.shape[0])])


def search_all(search: Search, queries: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    """Positions [q, k] that ``search`` finds for every query, in calls of ``batch_size``."""
    return np.concatenate([np.asarray(search(tf.constant(queries[s:s + batch_size]), k)[1])
                           for s in range(0, len(queries), batch_size)])


def batched_throughput(search: Search, queries: np.ndarray, k: int, batch_size: int) -> float:
    """Queries per second through calls of ``batch_size`` queries; one warm-up call first."""
    batches = [tf.constant(queries[s:s + batch_size]) for s in range(0, len(queries), batch_size)]
    search(batches[0], k)
    start = time.perf_counter()
    for batch in batches:
        np.asarray(search(batch, k)[1])
    return len(queries) / (time.perf_counter() - start)


def evaluate(search: Search, item_vectors: np.ndarray, queries: np.ndarray, ks: Sequence[int],
             latency_queries: int = 200, batch_size: int = 256) -> Dict[str, float]:
    """Recall@k of ``search`` against exact search, latency percentiles and throughput.

    Args:
      search: (queries [b, dim] tensor, k) -> (scores, positions [b, k]).
      item_vectors: float32 [n, dim], what the index was built on.
      queries: float32 [q, dim].
      ks: the cutoffs of Recall@k (capped at n).

    Returns:
      {'recall@k': ..., 'search_ms_p50'/'_p90'/'_p99', 'search_qps_batched',
       'eval_queries'}.
    """
    n = item_vectors.shape[0]
    ks = sorted({min(int(k), n) for k in ks})
    top = ks[-1]
    truth = exact_top_k(item_vectors, queries, top)
    found = search_all(search, queries, top, batch_size)
    out: Dict[str, float] = {f"recall@{k}": round(recall(found, truth, k), 4) for k in ks}
    out.update({f"search_ms_{p}": v for p, v in
                single_latency(search, queries[:latency_queries], top).items()})
    out["search_qps_batched"] = round(batched_throughput(search, queries, top, batch_size), 1)
    out["eval_queries"] = int(queries.shape[0])
    return out


def tuning_target(min_recall: float) -> float:
    """Recall the tuning aims at: a quarter of the way from ``min_recall`` to 1, so the index
    still clears ``min_recall`` on other queries (sampling noise of a few hundred queries)."""
    return min_recall + (1.0 - min_recall) / 4


def tune_search(index, item_vectors: np.ndarray, queries: np.ndarray, k: int, target: float,
                tune_leaves: bool = True, tune_reordering: bool = True,
                batch_size: int = 256) -> Dict[str, float]:
    """Sets a ScaNN searcher's query-time breadth (``index.leaves_to_search`` and
    ``index.reordering``) to the fastest tried whose Recall@k on ``queries`` reaches ``target``.

    ScaNN searches any number of leaves and re-orders any number of candidates
    without a rebuild, so both are chosen on data (use other queries than the
    evaluation's). For each re-ordering count (the built one, then x2 up to x16
    when ``tune_reordering``), the fewest leaves on a doubling ladder through the
    current value that reach ``target``; of those, the one whose search of
    ``queries`` took least time. When none reaches it: the best recall tried.

    Returns:
      {'leaves_to_search', 'reordering', 'tuning_recall'}.
    """
    truth = exact_top_k(item_vectors, queries, k)
    tried: Dict[tuple, tuple] = {}

    def measure(leaves: int, reorder) -> float:
        if (leaves, reorder) not in tried:
            index.leaves_to_search, index.reordering = leaves, reorder
            start = time.perf_counter()
            found = search_all(index.search, queries, k, batch_size)
            tried[leaves, reorder] = (recall(found, truth, k), time.perf_counter() - start)
        return tried[leaves, reorder][0]

    def fewest_leaves(start: int, reorder) -> int:
        leaves = start
        if not tune_leaves:
            measure(leaves, reorder)
            return leaves
        if measure(leaves, reorder) >= target:
            while leaves > 1 and measure(leaves // 2, reorder) >= target:
                leaves //= 2
            return leaves
        while leaves < index.num_leaves and measure(min(2 * leaves, index.num_leaves),
                                                     reorder) < target:
            leaves = min(2 * leaves, index.num_leaves)
        return min(2 * leaves, index.num_leaves)

    start = min(max(1, int(index.leaves_to_search or 1)), index.num_leaves)
    base = index.reordering
    reorders = [base]
    if tune_reordering and base:
        reorders = sorted({min(base * 2 ** i, item_vectors.shape[0]) for i in range(5)})
    for reorder in reorders:
        fewest_leaves(start, reorder)
    reaching = [key for key, (value, _) in tried.items() if value >= target]
    if reaching:
        chosen = min(reaching, key=lambda key: tried[key][1])
    else:
        chosen = max(tried, key=lambda key: (tried[key][0], -tried[key][1]))
    index.leaves_to_search, index.reordering = chosen
    return {"leaves_to_search": chosen[0], "reordering": chosen[1] or 0,
            "tuning_recall": round(tried[chosen][0], 4)}


def tune(index, settings, item_vectors: np.ndarray, queries: np.ndarray, k: int,
         min_recall: float):
    """Tunes ``index`` (a searcher) where ``settings`` leave its breadth to tuning.

    Returns:
      (the settings as tuned, ``tune_search``'s figures or {} when nothing was tuned).
    """
    if not (settings.tune_leaves_to_search or settings.tune_reordering):
        return settings, {}
    chosen = tune_search(index, item_vectors, queries, k, tuning_target(min_recall),
                         settings.tune_leaves_to_search, settings.tune_reordering)
    return dataclasses.replace(settings, num_leaves_to_search=chosen["leaves_to_search"],
                               reordering_candidates=chosen["reordering"]), chosen


def bless(metrics: Dict[str, float], gate: str, min_recall: float) -> Dict[str, object]:
    """The verdict: blessed when ``metrics[gate]`` reaches ``min_recall``."""
    value = float(metrics[gate])
    blessed = value >= min_recall
    reason = (f"index {gate} against exact search {value:.4f} "
              f"{'>=' if blessed else '<'} required {min_recall:.4f}")
    return {"blessed": blessed, "gate": gate, "value": value, "min_recall": min_recall,
            "reason": reason}
