"""Re-ranking rules benchmark: what each rule costs and buys on held-out data, same model.

The holdout recommender of a pipeline run (``--run-dir``; default: a fresh run on
the embedded data; the twin of the pushed model that knows only the train split,
models/holdout.py) is rebuilt with each rule setting around the same index
and ranker; every variant answers the eval split's users through
``serving_default``. The first row is the ranked list alone (no rules, no EASE
fused in: the ranking trainer's own held-out figure), the second the list the
rules start from (EASE fused in at the model's weight). Per setting: NDCG@10
and Recall@10 against the held-out interactions, intra-list similarity (mean
pairwise cosine of the listed items' embeddings: lower is more diverse) and the
share of fresh items (first interaction within 30 days of the user's last
activity).

Run: ``make bench-rerank``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import tempfile
from typing import Dict, List

import numpy as np
import tensorflow as tf

from bench.serving import models_of, pipeline_run, write_results
from models import (
    features,
    records,
)
from models.evaluation import metrics
from recommender import servable

SETTINGS = {
    "ranked list alone": dict(dislike_similarity=1.0, ease_weight=0.0),
    "no rules (fused list)": dict(dislike_similarity=1.0),
    "default": {},
    "diversity 0.1": dict(diversity=0.1),
    "diversity 0.3": dict(diversity=0.3),
    "freshness 0.2": dict(freshness_boost=0.2),
    "freshness 0.5": dict(freshness_boost=0.5),
}


def eval_files(run_dir: str) -> List[str]:
    splits = sorted(glob.glob(os.path.join(run_dir, "**", "InteractionsExampleGen", "examples",
                                           "*", "Split-eval"), recursive=True))
    if not splits:
        raise FileNotFoundError(f"no eval split under {run_dir}")
    return [os.path.join(splits[-1], "*")]


def list_figures(model: servable.Recommender, users: np.ndarray, held: Dict[str, set], index,
                 k: int = 10) -> Dict[str, float]:
    """Mean NDCG@k, Recall@k, intra-list similarity and fresh share over ``users``."""
    embeddings = tf.math.l2_normalize(index.item_embeddings, axis=-1).numpy()
    position = {i.decode("utf-8"): p for p, i in enumerate(index.item_ids.numpy())}
    first_seen = model.first_seen.numpy()
    sums = {"ndcg@10": 0.0, "recall@10": 0.0, "intra_list_similarity": 0.0, "fresh_share": 0.0}
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        lists = model.recommend(tf.constant(chunk, tf.string))["item_ids"].numpy()
        found = index.retrieve_positions(tf.constant(chunk, tf.string))
        times = found["time"].numpy()
        for user, row, now in zip(chunk, lists, times):
            items = [i.decode("utf-8") for i in row if i][:k]  # "" pads a short list
            figures = metrics.user_metrics(items, held[user], (k,))
            sums["ndcg@10"] += figures[f"ndcg@{k}"]
            sums["recall@10"] += figures[f"recall@{k}"]
            positions = np.array([position[i] for i in items])
            vectors = embeddings[positions]
            similarity = vectors @ vectors.T
            n = len(positions)
            sums["intra_list_similarity"] += (similarity.sum() - n) / max(n * (n - 1), 1)
            sums["fresh_share"] += float(np.mean((now - first_seen[positions]) < 30 * 86400))
    return {key: value / max(len(users), 1) for key, value in sums.items()}


def run(model_dir: str, files: List[str]) -> Dict[str, Dict[str, float]]:
    parts = servable.parts_of(tf.saved_model.load(model_dir))
    columns = records.read_columns(files)
    held = metrics.group_by_user(columns[features.USER_ID], columns[features.ITEM_ID])
    known = set(u.decode("utf-8") for u in parts.index.user_ids.numpy())
    users = np.array(sorted(u for u in held if u in known), dtype=object)
    table = {}
    for name, change in SETTINGS.items():
        model = parts.build(dataclasses.replace(parts.rules, **change))
        table[name] = list_figures(model, users, held, parts.index)
    return table


def render(table: Dict[str, Dict[str, float]]) -> str:
    columns = ["ndcg@10", "recall@10", "intra_list_similarity", "fresh_share"]
    lines = [f"{'rules':<26}" + "".join(f"{c:>23}" for c in columns)]
    for name, figures in table.items():
        lines.append(f"{name:<26}" + "".join(f"{figures[c]:>23.4f}" for c in columns))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="an earlier `recsys run --output-dir` to reuse")
    parser.add_argument("--model", help="the recommender to use (default: the newest holdout "
                                        "recommender under --run-dir)")
    parser.add_argument("--out", default="bench/results/rerank")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-rerank-") as work:
        run_dir = args.run_dir or os.path.join(work, "run")
        if args.model:
            model = args.model
        else:
            # Scored on the run's eval split: the twin that has not seen it.
            model = (models_of(run_dir) if args.run_dir else pipeline_run(run_dir))["holdout"]
        table = run(model, eval_files(run_dir))
    write_results(args.out, "rerank", table, render(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
