"""Side-by-side quality benchmark: popularity, EASE, retrieval alone and the pushed recommender.

    make bench-quality [DATA=FOLDER]        (default: the embedded synthetic data)
    python -m bench.quality --data FOLDER --output bench/results/quality

One run of the real pipeline (``recsys run``) trains and pushes the
recommender; every model is then scored on that run's own split (the latest
share of each user's interactions held out, all items ranked, training items
excluded): EASE and popularity are fitted on the same training split.

Cold start is measured with a second pipeline run on a copy of the data from
which a share of the users and a share of the items are removed entirely:
  * cold users: the pushed model is asked through ``recommend_with_context``
    with the user's demographics only, and with demographics plus the user's
    first few interactions as request-time history; scored on the rest;
  * cold items: for the known users who interacted with a removed item, the
    removed items are ranked by the served embeddings (built from the items'
    features alone) and compared with a genre-popularity ranking.

Writes ``quality.json`` and ``quality.png`` into ``--output``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from components import features as F  # noqa: E402
from components import io  # noqa: E402
from components.data import readers, splits  # noqa: E402
from components.evaluator import evaluate as E  # noqa: E402
from components.evaluator import metrics as M  # noqa: E402
from pipeline import local_runner  # noqa: E402
from pipeline.config import DataConfig, EvalConfig, PipelineConfig  # noqa: E402

CUTOFFS = (10, 50, 100)
COLUMNS = ("recall@10", "recall@50", "recall@100", "ndcg@10", "hr@10", "mrr", "coverage@10")


def _run(config: PipelineConfig, output_dir: str) -> Dict[str, object]:
    result = local_runner.run(config, output_dir)
    if not result.get("pushed"):
        raise RuntimeError(f"the pipeline in {output_dir} pushed no model; see its summary.json")
    return result


def _split_files(result, split: str) -> List[str]:
    """File pattern of one split of the run's interactions ExampleGen output."""
    return [f"{result['examples_uri']}/Split-{split}/*"]


def main_table(result, num_items: int) -> Dict[str, Dict[str, float]]:
    """Metrics of every model on the run's eval split (the pipeline evaluator's code, plus EASE)."""
    scores = E.evaluate(result["pushed_to"], _split_files(result, F.TRAIN),
                        _split_files(result, F.EVAL), num_items, EvalConfig(cutoffs=CUTOFFS),
                        ease=True)["metrics"]
    return {name: scores[name] for name in (E.POPULARITY, E.EASE, E.RETRIEVAL, E.MODEL)}


# --- cold start ---


def cold_split(dataset: readers.Dataset, fraction: float, seed: int):
    """Chooses cold users and cold items (among those with interactions) at random."""
    rng = np.random.default_rng(seed)
    users = sorted(set(dataset.interactions[F.USER_ID]))
    items = sorted(set(dataset.interactions[F.ITEM_ID]))
    cold_users = set(rng.choice(users, max(1, int(len(users) * fraction)), replace=False))
    cold_items = set(rng.choice(items, max(1, int(len(items) * fraction)), replace=False))
    return cold_users, cold_items


def write_without(dataset: readers.Dataset, cold_users, cold_items, folder: str) -> None:
    """The dataset in the canonical layout minus every interaction of cold users or items.

    Users and items stay in users.csv and items.csv: their features are known.
    """
    os.makedirs(folder, exist_ok=True)
    inter = dataset.interactions
    with open(os.path.join(folder, "interactions.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.USER_ID, F.ITEM_ID, F.TIMESTAMP, F.RATING))
        for row in zip(inter[F.USER_ID], inter[F.ITEM_ID], inter[F.TIMESTAMP], inter[F.RATING]):
            if row[0] not in cold_users and row[1] not in cold_items:
                writer.writerow(row)
    with open(os.path.join(folder, "users.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.USER_ID, F.AGE, F.GENDER, F.OCCUPATION))
        for user, values in sorted(dataset.users.items()):
            writer.writerow((user, values[F.AGE], values[F.GENDER], values[F.OCCUPATION]))
    with open(os.path.join(folder, "items.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.ITEM_ID, F.TITLE, F.GENRES, F.YEAR))
        for item, values in sorted(dataset.items.items()):
            writer.writerow((item, values[F.TITLE], "|".join(values[F.GENRES]), values[F.YEAR]))


def cold_users_table(model, dataset, cold_users, popular: Sequence[str], history: int, k: int,
                     num_items: int) -> Dict[str, Dict[str, float]]:
    """Recall of cold users' interactions: model (demographics; + a short history) vs popularity."""
    histories = splits.Histories(dataset.interactions, F.MAX_HISTORY)
    timeline = {user: histories.timeline(user) for user in cold_users}
    users = sorted(u for u, items in timeline.items() if len(items) > history)
    call = model.signatures["recommend_with_context"]
    out = {}
    for label, given in (("demographics only", 0), (f"+ first {history} items", history)):
        held_out = {u: set(timeline[u][given:]) for u in users}
        lists: Dict[str, List[str]] = {}
        for start in range(0, len(users), 256):
            chunk = users[start:start + 256]
            hist = [timeline[u][:given] for u in chunk]
            width = max(1, given)
            padded = [h + [""] * (width - len(h)) for h in hist]
            response = call(
                user_id=tf.constant(chunk),
                age=tf.constant([int(dataset.users[u][F.AGE]) for u in chunk], tf.int64),
                gender=tf.constant([dataset.users[u][F.GENDER] for u in chunk]),
                occupation=tf.constant([dataset.users[u][F.OCCUPATION] for u in chunk]),
                history=tf.constant(padded, tf.string),
                exclude=tf.constant([[""]] * len(chunk)), k=tf.constant(0))
            for user, row in zip(chunk, response["item_ids"].numpy()):
                lists[user] = [i.decode("utf-8") for i in row]
        baseline = M.popularity_recommendations(
            popular, {u: set(timeline[u][:given]) for u in users}, users, k)
        out[f"cold users, {label}: model"] = M.mean_metrics(lists, held_out, (10, k), num_items)
        out[f"cold users, {label}: popularity"] = M.mean_metrics(baseline, held_out, (10, k), num_items)
    return out


def cold_items_table(model, dataset, cold_items, train_items: Sequence[str],
                     k: int = 10) -> Dict[str, Dict[str, float]]:
    """Among the cold items only: recall@k of each known user's cold-item interactions.

    The model ranks cold items by the served embeddings (features only: the
    items had no interactions); the baseline ranks them by the training
    popularity of their genres.
    """
    inter = dataset.interactions
    held_out = M.group_by_user(
        [u for u, i in zip(inter[F.USER_ID], inter[F.ITEM_ID]) if i in cold_items],
        [i for i in inter[F.ITEM_ID] if i in cold_items])
    index = model.index
    known = set(index.user_ids.numpy().astype(str))
    users = sorted(u for u in held_out if u in known)
    held_out = {u: held_out[u] for u in users}
    catalogue = index.item_ids.numpy().astype(str)
    pool = [p for p, item in enumerate(catalogue) if item in cold_items]
    pool_ids = catalogue[pool]
    vectors = tf.gather(index.item_embeddings, pool).numpy()
    genre_counts: Dict[str, int] = {}
    for item in train_items:
        for genre in dataset.items[item][F.GENRES]:
            genre_counts[genre] = genre_counts.get(genre, 0) + 1
    genre_score = np.array([np.mean([genre_counts.get(g, 0) for g in dataset.items[i][F.GENRES]] or [0])
                            for i in pool_ids])
    genre_order = [pool_ids[j] for j in np.argsort(-genre_score, kind="stable")]
    lists: Dict[str, List[str]] = {}
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        scores = index.embed_users(tf.constant(chunk)).numpy() @ vectors.T
        for user, row in zip(chunk, scores):
            lists[user] = list(pool_ids[np.argsort(-row)[:k]])
    baseline = {u: genre_order[:k] for u in users}
    return {
        f"cold items ({len(pool)} items): model": M.mean_metrics(lists, held_out, (k,), len(pool)),
        "cold items: genre popularity": M.mean_metrics(baseline, held_out, (k,), len(pool)),
    }


def cold_start(data_dir: str, base: PipelineConfig, output_dir: str, fraction: float,
               history: int, seed: int = 0) -> Dict[str, Dict[str, float]]:
    dataset = readers.read_dataset(data_dir)
    cold_users, cold_items = cold_split(dataset, fraction, seed)
    folder = os.path.join(output_dir, "cold-data")
    write_without(dataset, cold_users, cold_items, folder)
    config = dataclasses.replace(
        base, data=dataclasses.replace(base.data, data_dir=folder),
        serving_dir=os.path.join(output_dir, "cold-serving"))
    result = _run(config, os.path.join(output_dir, "cold-run"))
    model = tf.saved_model.load(result["pushed_to"])
    train = io.read_columns(_split_files(result, F.TRAIN))
    popular = M.popularity_ranking(train[F.ITEM_ID])
    table = cold_users_table(model, dataset, cold_users, popular, history, base.top_k,
                             len(dataset.items))
    table.update(cold_items_table(model, dataset, cold_items, train[F.ITEM_ID]))
    return table


# --- report ---


def render(table: Dict[str, Dict[str, float]], columns: Sequence[str]) -> str:
    cols = [c for c in columns if any(c in row for row in table.values())]
    width = max(len(name) for name in table) + 2
    lines = [f"{'':<{width}}" + "".join(f"{c:>12}" for c in cols) + f"{'users':>8}"]
    for name, row in table.items():
        cells = "".join(f"{row[c]:>12.4f}" if c in row else f"{'-':>12}" for c in cols)
        lines.append(f"{name:<{width}}" + cells + f"{int(row.get('users', 0)):>8}")
    return "\n".join(lines)


def chart(table: Dict[str, Dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Cutoffs longer than the served list are not computed; only metrics every model has.
    metrics = [m for m in ("recall@10", "recall@100", "ndcg@10", "hr@10", "mrr")
               if all(m in row for row in table.values())]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(table)
    for n, (name, row) in enumerate(table.items()):
        ax.bar(np.arange(len(metrics)) + n * width, [row.get(m, 0.0) for m in metrics], width,
               label=name)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2)
    ax.set_xticklabels(metrics)
    ax.legend()
    ax.set_title("Held-out quality, same split")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="data folder; default: the synthetic data")
    parser.add_argument("--output", default="bench/results/quality")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--cold-fraction", type=float, default=0.1,
                        help="share of users and of items removed for the cold-start run")
    parser.add_argument("--cold-history", type=int, default=5,
                        help="interactions a cold user gives at request time")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--synthetic-users", type=int, default=None)
    parser.add_argument("--synthetic-items", type=int, default=None)
    parser.add_argument("--synthetic-interactions", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    output = os.path.abspath(args.output)
    data = DataConfig(data_dir=args.data and os.path.abspath(args.data))
    sizes = {f"synthetic_{k}": getattr(args, f"synthetic_{k}")
             for k in ("users", "items", "interactions") if getattr(args, f"synthetic_{k}")}
    data = dataclasses.replace(data, **sizes)
    config = PipelineConfig(data=data, top_k=args.top_k,
                            serving_dir=os.path.join(output, "serving"))
    started = time.time()
    result = _run(config, os.path.join(output, "run"))
    data_dir = args.data or local_runner.prepare_data(config, os.path.join(output, "run"))
    num_items = len(readers.read_dataset(data_dir).items)
    table = main_table(result, num_items)
    report = {"data": args.data or "synthetic", "top_k": args.top_k, "main": table,
              "retrieval_training": result.get("retrieval_training", {})}
    print("\nHeld-out quality (same split, all items ranked, training items excluded)")
    print(render(table, COLUMNS))
    if not args.no_cold_start:
        cold = cold_start(data_dir, config, output, args.cold_fraction, args.cold_history)
        report["cold_start"] = cold
        print(f"\nCold start ({args.cold_fraction:.0%} of users and of items removed from training)")
        print(render(cold, ("recall@10", f"recall@{args.top_k}", "ndcg@10", "hr@10")))
    report["seconds"] = round(time.time() - started, 1)
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "quality.json"), "w") as f:
        json.dump(report, f, indent=2)
    chart(table, os.path.join(output, "quality.png"))
    print(f"\nWrote {output}/quality.json and quality.png ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
