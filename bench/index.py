"""Index benchmark: the project's ScaNN index against TensorFlow's exact top-k, same run.

Synthetic clustered embeddings (unit length, like the retrieval model's) at
each catalogue size; queries drawn from the same clusters. For each size:

* ``scann``: the index exactly as the IndexBuilder builds it: the automatic
  settings of ``models/index/searcher.resolve`` for that size, the
  leaves searched and candidates re-ordered tuned on separate queries to the
  target recall (``evaluation.tune_search``), searched through TensorFlow ops
  (``ScannSearch.search``).
* ``exact``: the exact flavour, TensorFlow's matmul + ``top_k`` over every item
  (``ExactSearch.search``): the baseline.
* ``scann-pybind``: the same ScaNN settings through ScaNN's own Python binding,
  no TensorFlow: shows what the TensorFlow path costs.

Figures: Recall@10 against exact search (NumPy), single-query latency
percentiles, batched throughput, build time, index size (the arrays a server
holds) and the peak resident memory the build adds. Run: ``make bench-index``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Dict, List

import numpy as np
import tensorflow as tf

from models.index import evaluation, searcher
from pipeline.config import IndexConfig

K = 10
TARGETS = {"recall@10": 0.95, "batched_speedup": 30.0, "single_latency_ratio": 100.0}


def clustered(n: int, dim: int, clusters: int, rng: np.random.Generator,
              centres: np.ndarray = None) -> np.ndarray:
    """Points around ``clusters`` Gaussian centres, noise as large as the centres, unit length."""
    if centres is None:
        centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    points = centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dim)).astype(np.float32)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """Peak resident memory above the starting level while the block runs (Linux: resets the
    process's high-water mark through /proc/self/clear_refs)."""

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.start = _status_mib("VmRSS:")
        return self

    def __exit__(self, *exc):
        self.mib = round(_status_mib("VmHWM:") - self.start, 1)


def _timed_build(build):
    """(what ``build()`` returns, its seconds, the peak MiB it added)."""
    with PeakMemory() as memory:
        start = time.perf_counter()
        built = build()
        seconds = time.perf_counter() - start
    return built, seconds, memory.mib


def _row(n, method, settings, index, build_s, peak_mib, items, queries, args) -> Dict[str, object]:
    """One table row: the build's figures and ``index.search`` measured against exact search."""
    report = evaluation.evaluate(index.search, items, queries, (K,),
                                 latency_queries=args.latency_queries, batch_size=args.batch_size)
    return {"items": n, "method": method, "settings": settings, "build_s": round(build_s, 2),
            "index_mib": round(index.size_bytes() / 2**20, 1), "build_peak_mib": peak_mib,
            **{key: report[key] for key in ("recall@10", "search_ms_p50", "search_ms_p90",
                                            "search_ms_p99", "search_qps_batched")}}


class _Pybind:
    """ScaNN's own binding, no TensorFlow, with the project's settings."""

    def __init__(self, items: np.ndarray, settings: searcher.Settings):
        import scann

        builder = scann.scann_ops_pybind.builder(items, K, "dot_product")
        self.searcher = searcher.configure(builder, settings).build()
        self.leaves = settings.num_leaves_to_search if settings.num_leaves > 1 else None

    def size_bytes(self) -> int:
        with tempfile.TemporaryDirectory() as folder:
            self.searcher.serialize(folder)
            return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))

    def search(self, queries, k):
        queries = np.asarray(queries)
        if queries.shape[0] == 1:
            found, scores = self.searcher.search(queries[0], final_num_neighbors=k,
                                                 leaves_to_search=self.leaves)
            return scores[None], found[None]
        found, scores = self.searcher.search_batched_parallel(queries, final_num_neighbors=k,
                                                              leaves_to_search=self.leaves)
        return scores, found


def run_size(n: int, dim: int, args) -> List[Dict[str, object]]:
    rng = np.random.default_rng(args.seed)
    clusters = max(1, n // args.cluster_size)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    items = clustered(n, dim, clusters, rng, centres)
    tuning = clustered(args.queries, dim, clusters, rng, centres)
    queries = clustered(args.queries, dim, clusters, rng, centres)
    rows = []

    settings = searcher.resolve(IndexConfig(min_recall=args.target_recall,
                                            reordering_candidates=args.reordering_candidates), n, K)
    index, build, peak = _timed_build(lambda: searcher.build(items, settings, K))
    settings, _ = evaluation.tune(index, settings, items, tuning, K, args.target_recall)
    rows.append(_row(n, settings.flavour, settings.describe(), index, build, peak, items, queries,
                     args))
    del index

    exact, build, peak = _timed_build(lambda: searcher.ExactSearch(items))
    rows.append(_row(n, "exact", "tf.matmul + tf.math.top_k", exact, build, peak, items, queries,
                     args))
    del exact

    if args.pybind and settings.flavour == searcher.SCANN:
        plain, build, peak = _timed_build(lambda: _Pybind(items, settings))
        rows.append(_row(n, "scann-pybind", "same, no TensorFlow", plain, build, peak, items,
                         queries, args))
    return rows


def ratios(rows: List[Dict[str, object]]) -> Dict[int, Dict[str, float]]:
    """Per size: the project's index against the exact baseline."""
    out = {}
    for n in sorted({r["items"] for r in rows}):
        by = {r["method"]: r for r in rows if r["items"] == n}
        if searcher.SCANN not in by:
            continue
        index, exact = by[searcher.SCANN], by["exact"]
        out[n] = {"recall@10": index["recall@10"],
                  "batched_speedup": round(index["search_qps_batched"] / exact["search_qps_batched"], 1),
                  "single_latency_ratio": round(exact["search_ms_p50"] / index["search_ms_p50"], 1)}
    return out


def render(rows, summary) -> str:
    head = (f"{'items':>9} {'method':<13} {'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'batched q/s':>12} {'build s':>8} {'index MiB':>9} {'peak MiB':>9}  settings")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['items']:>9,} {r['method']:<13} {r['recall@10']:>9.4f} "
                     f"{r['search_ms_p50']:>8.3f} {r['search_ms_p99']:>8.3f} "
                     f"{r['search_qps_batched']:>12,.0f} {r['build_s']:>8.2f} {r['index_mib']:>9.1f} "
                     f"{r['build_peak_mib']:>9.1f}  {r['settings']}")
    lines.append("")
    lines.append("ScaNN (project path) vs exact TF top-k, same run; targets at the largest size: "
                 + ", ".join(f"{k} >= {v:g}" for k, v in TARGETS.items()))
    largest = max(summary) if summary else None
    for n, values in summary.items():
        checks = "  ".join(
            f"{k} {values[k]:g}" + (f" ({'met' if values[k] >= TARGETS[k] else 'MISSED'})"
                                     if n == largest else "") for k in TARGETS)
        lines.append(f"  {n:>9,} items: {checks}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000,
                        help="queries for recall and throughput (and as many for tuning)")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cluster-size", type=int, default=1000,
                        help="items per cluster (fewer, broader clusters are harder for a tree)")
    parser.add_argument("--target-recall", type=float, default=TARGETS["recall@10"])
    parser.add_argument("--reordering-candidates", type=int, default=None,
                        help="IndexConfig.reordering_candidates (default: automatic)")
    parser.add_argument("--no-pybind", dest="pybind", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/index")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}; {os.cpu_count()} CPUs; {args.dim}-d embeddings, "
          f"clusters of ~{args.cluster_size} items, {args.queries} queries, top {K}")
    rows = []
    for n in args.sizes:
        rows.extend(run_size(n, args.dim, args))
    summary = ratios(rows)
    text = render(rows, summary)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"rows": rows, "ratios": {str(k): v for k, v in summary.items()},
                   "targets": TARGETS, "args": vars(args)}, f, indent=2)
    with open(os.path.join(args.out, "index.txt"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
