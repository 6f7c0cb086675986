"""Serving latency benchmark: the recommender servable against the retrieval-only servable.

Both are SavedModels loaded fresh from disk and called through their
signatures, as TF Serving calls them (TF Serving itself cannot run here):

* ``recommender``: the pushed model, retrieve -> rank -> re-rank
  (``serving_default``; ``recommend_with_context`` with a recent history).
* ``retrieval-only``: the index builder's servable (``serving_default`` =
  retrieve), the baseline, same users, same run.

Sizes:
* ``movielens``: the models a pipeline run on the embedded data (MovieLens-100K
  shape) trained and pushed (``--run-dir`` reuses an earlier run's output).
* ``1M`` (``--catalogue``): the same trained query tower, ranker and users over a
  synthetic catalogue of clustered unit embeddings, indexed with ScaNN as the
  IndexBuilder would (automatic settings, search breadth tuned to its recall
  target), both servables saved and reloaded.

Per servable: single requests (batch 1) and batches of 32, p50/p99 ms on CPU.
Run: ``make bench-serving``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import tempfile
import time
from typing import Dict, List

import numpy as np
import tensorflow as tf

from bench.index import clustered
from local import runner as local_runner
from models import arrays
from models.index import contract, evaluation, searcher, servable
from models.ranking import ease as item_item
from models.ranking import neighbours as item_neighbours
from pipeline.config import IndexConfig, PipelineConfig
from recommender import client
from recommender import servable as recommender

BATCH = 32
# p99 of one recommender serving_default request, by catalogue size.
TARGETS_P99_MS = {"movielens": 5.0, "1M": 30.0}


def pipeline_run(output_dir: str) -> Dict[str, str]:
    """Runs the pipeline on the embedded data; returns the pushed and index model dirs."""
    config = dataclasses.replace(PipelineConfig(), pipeline_root=os.path.join(output_dir, "root"),
                                 serving_dir=os.path.join(output_dir, "serving"))
    local_runner.run(config, output_dir)
    return models_of(output_dir)


def _blessed(index_dir: str) -> bool:
    stats = os.path.join(os.path.dirname(index_dir), "index_stats.json")
    return os.path.exists(stats) and bool(json.load(open(stats)).get("blessed"))


def models_of(run_dir: str) -> Dict[str, str]:
    """The newest pushed recommender, blessed IndexBuilder servable and holdout recommender
    under a run's output."""
    pushed = sorted(glob.glob(os.path.join(run_dir, "**", "recommender", "[0-9]*"), recursive=True),
                    key=lambda p: int(os.path.basename(p)))
    index = sorted((p for p in glob.glob(os.path.join(run_dir, "**", "IndexBuilder", "index", "*",
                                                      "Format-Serving"), recursive=True)
                    if _blessed(p)), key=lambda p: int(p.split(os.sep)[-2]))
    if not pushed or not index:
        raise FileNotFoundError(f"no pushed recommender and index servable under {run_dir}; "
                                f"run the pipeline there first (recsys run --output-dir)")
    stats = json.load(open(os.path.join(os.path.dirname(index[-1]), "index_stats.json")))
    # The assembled twin that knows only the train split: what held-out checks score.
    twins = sorted(glob.glob(os.path.join(run_dir, "**", "RecommenderAssembler", "holdout_model", "*",
                                          "Format-Serving"), recursive=True),
                   key=lambda p: int(p.split(os.sep)[-2]))
    return {"recommender": pushed[-1], "retrieval-only": index[-1], "flavour": stats["flavour"],
            "holdout": twins[-1] if twins else pushed[-1]}


def _users_of(index) -> servable.Users:
    """The users a loaded index servable holds, as ``servable.Users``."""
    n = contract.users_of(index)
    return servable.Users(
        ids=arrays.to_str(index.user_ids.numpy()),
        ages=index.user_ages.numpy()[:n], genders=arrays.to_str(index.user_genders.numpy()[:n]),
        occupations=arrays.to_str(index.user_occupations.numpy()[:n]),
        histories=arrays.to_str(index.user_histories.numpy()[:n]),
        last_seen=index.user_last_seen.numpy()[:n],
        seen_row_splits=index.seen_row_splits.numpy()[:n + 1],
        seen_items=index.seen_items.numpy())


def synthetic_catalogue(models: Dict[str, str], n_items: int, output_dir: str,
                        seed: int = 0) -> Dict[str, str]:
    """Both servables over ``n_items`` synthetic items, with the run's towers and ranker.

    The item ids are the run's catalogue followed by made-up ones, so the run's
    users' histories and exclusions stay meaningful.
    """
    pushed = tf.saved_model.load(models["recommender"])
    index = pushed.index
    rng = np.random.default_rng(seed)
    dim = int(index.item_embeddings.shape[1])
    known = index.item_embeddings.numpy()
    vectors = np.vstack([known, clustered(n_items - len(known), dim, max(1, n_items // 1000), rng)])
    item_ids = np.concatenate([arrays.to_str(index.item_ids.numpy()),
                               [f"synthetic-{i}" for i in range(n_items - len(known))]])
    popularity = np.concatenate([index.popularity.numpy(),
                                 rng.poisson(1.0, n_items - len(known)).astype(np.float32)])
    config, users = IndexConfig(), _users_of(index)
    settings = searcher.resolve(config, n_items,
                                servable.search_depth(config.candidates, users, n_items))
    big = servable.RetrievalIndex(item_ids, vectors, item_ids, popularity, users, index.encoder,
                                  config.candidates, settings)
    tuning = big.embed_users(tf.constant(big.user_ids.numpy()[:1000])).numpy()
    evaluation.tune(big.searcher, settings, vectors, tuning, big.candidates, config.min_recall)
    out = {"retrieval-only": os.path.join(output_dir, f"index-{n_items}"),
           "recommender": os.path.join(output_dir, f"recommender-{n_items}"),
           "flavour": settings.flavour}
    servable.save(big, out["retrieval-only"])
    parts = recommender.parts_of(pushed)
    first_seen = np.concatenate([parts.first_seen,
                                 rng.choice(parts.first_seen, n_items - len(known))])
    # The made-up items have no co-interactions: no neighbours, as new items.
    table, extra = parts.neighbours, n_items - len(known)
    width = table.ids.shape[1]
    neighbours = item_neighbours.Neighbours(
        np.vstack([table.ids, np.full((extra, width), -1, np.int32)]),
        np.vstack([table.cooccurrences, np.zeros((extra, width), np.float32)]),
        np.concatenate([table.counts, np.zeros(extra, np.float32)]))
    trend = parts.trend._replace(cumulative=np.vstack([
        parts.trend.cumulative, np.zeros((extra, parts.trend.cumulative.shape[1]), np.float32)]))
    # No user's dislikes: the made-up catalogue's rows are not the run's. No EASE: a pipeline
    # fits none at this many items x users (metrics.ease_fits).
    big_parts = dataclasses.replace(parts, index=big, first_seen=first_seen, disliked=None,
                                    neighbours=neighbours, trend=trend,
                                    ease=item_item.none(n_items),
                                    settings={**parts.settings, "ease_weight": 0.0})
    recommender.save(big_parts.build(), out["recommender"])
    return out


def measure(model_dir: str, users: List[str], history: List[str], repeats: int) -> List[Dict]:
    """p50/p99 ms of single requests and batches of BATCH through a fresh load's signatures."""
    model = client.LocalModel(model_dir).model
    rows = []
    default = model.signatures["serving_default"]
    singles = [tf.constant(users[i % len(users)], shape=[1]) for i in range(repeats)]
    batches = [tf.constant([users[(i * BATCH + j) % len(users)] for j in range(BATCH)])
               for i in range(max(repeats // 4, 10))]
    for name, inputs in (("single", singles), (f"batch {BATCH}", batches)):
        latency = evaluation.latency_ms(lambda u: default(user_id=u)["item_ids"].numpy(), inputs)
        rows.append({"signature": "serving_default", "requests": name, **latency})
    if "recommend_with_context" in model.signatures:
        context = model.signatures["recommend_with_context"]
        request = {"user_id": tf.constant([""]), "age": tf.constant([30], tf.int64),
                   "gender": tf.constant([""]), "occupation": tf.constant([""]),
                   "history": tf.constant([history]), "exclude": tf.constant([[""]]),
                   "k": tf.constant(10, tf.int32)}
        latency = evaluation.latency_ms(lambda _: context(**request)["item_ids"].numpy(),
                                        list(range(repeats)))
        rows.append({"signature": "recommend_with_context", "requests": "single", **latency})
    return rows


def run(models_by_size: Dict[str, Dict[str, str]], repeats: int) -> List[Dict]:
    rows = []
    for size, models in models_by_size.items():
        index = tf.saved_model.load(models["retrieval-only"])
        users = [u.decode() for u in index.user_ids.numpy()]
        history = [i.decode() for i in index.item_ids.numpy()[:5]]
        n_items = int(index.item_embeddings.shape[0])
        for servable_name in ("recommender", "retrieval-only"):
            for row in measure(models[servable_name], users, history, repeats):
                rows.append({"size": size, "items": n_items, "servable": servable_name,
                             "flavour": models["flavour"], **row})
    return rows


def write_results(out_dir: str, name: str, figures, table: str) -> None:
    """Prints ``table`` and writes ``figures`` as NAME.json and the table as NAME.txt."""
    print(table)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(figures, f, indent=2)
    with open(os.path.join(out_dir, f"{name}.txt"), "w") as f:
        f.write(table + "\n")


def render(rows: List[Dict]) -> str:
    lines = [f"{'catalogue':>10} {'items':>9} {'flavour':>7} {'servable':>15} "
             f"{'signature':>22} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  vs retrieval p50/p99"]
    base = {(r["size"], r["signature"], r["requests"]): r for r in rows
            if r["servable"] == "retrieval-only"}
    for r in rows:
        ref = base.get((r["size"], r["signature"], r["requests"]))
        ratio = (f"{r['p50'] / ref['p50']:.2f}x / {r['p99'] / ref['p99']:.2f}x"
                 if ref and r["servable"] != "retrieval-only" else "")
        lines.append(f"{r['size']:>10} {r['items']:>9,} {r['flavour']:>7} {r['servable']:>15} "
                     f"{r['signature']:>22} {r['requests']:>9} {r['p50']:>8.2f} {r['p99']:>8.2f}  "
                     f"{ratio}")
    for size, target in TARGETS_P99_MS.items():
        got = [r for r in rows if r["size"] == size and r["servable"] == "recommender"
               and r["signature"] == "serving_default" and r["requests"] == "single"]
        if got:
            verdict = "met" if got[0]["p99"] <= target else "NOT met"
            lines.append(f"target {size}: recommender single-request p99 {got[0]['p99']:.2f} ms "
                         f"<= {target:.0f} ms: {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="an earlier `recsys run --output-dir` to reuse; "
                                          "default: run the pipeline on the embedded data")
    parser.add_argument("--catalogue", type=int, default=1_000_000,
                        help="items of the synthetic catalogue (0: skip)")
    parser.add_argument("--repeats", type=int, default=300, help="single requests per figure")
    parser.add_argument("--out", default="bench/results/serving")
    args = parser.parse_args(argv)
    # The servables (about 1.2 GB at 1M items) and a fresh run live only as long as the benchmark.
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as work:
        models = models_of(args.run_dir) if args.run_dir else pipeline_run(os.path.join(work, "run"))
        sizes = {"movielens": models}
        if args.catalogue:
            start = time.time()
            sizes["1M" if args.catalogue == 1_000_000 else f"{args.catalogue:,}"] = \
                synthetic_catalogue(models, args.catalogue, work)
            print(f"built the {args.catalogue:,}-item servables in {time.time() - start:.0f} s")
        rows = run(sizes, args.repeats)
    write_results(args.out, "serving", rows, render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
