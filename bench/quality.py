"""The users' question, measured: how good is the list the pushed model serves tomorrow?

    make bench-quality [DATA=FOLDER]        (default: the synthetic shapes, SHAPES)
    python -m bench.quality --data FOLDER --output bench/results/quality [--no-refit]
    python -m bench.quality --shapes long-tail

Outer protocol: each user's timeline is split at 80% *before* the pipeline
(the same per-user temporal rule as the pipeline's own split). The pipeline
runs on the first part only (``given/``, canonical layout), and pushes a model;
the pushed model is then asked through ``serving_default`` (lists of 100) for
every user with later interactions, and scored on them; items the user
interacted with in the given part are never counted as hits. Beside it, in
the same run, on the same given part: popularity, EASE (L2 tuned on an inner
temporal split of the given part) and implicit ALS (size and confidence tuned
the same way), and the pushed model's own retrieval stage (``retrieve``).
The pipeline's summary keeps its inner eval-split figures (what the holdout
models score on the given part's latest 20%): a different question.

Cold start is measured with a second pipeline run on a copy of the data from
which a share of the users and a share of the items are removed entirely:
  * cold users: the pushed model is asked through ``recommend_with_context``
    with the user's demographics only, and with demographics plus the user's
    first few interactions as request-time history; scored on the rest;
  * cold items: for the known users who interacted with a removed item, the
    removed items are ranked by the served embeddings (built from the items'
    features alone) and compared with a genre-popularity ranking.

Writes ``quality.json`` and ``quality.png`` into ``--output`` (one folder per shape
without --data, and a ``quality.json`` of every shape's table and lead over EASE).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from bench import baselines
from local import runner as local_runner
from models import (
    arrays,
    features,
    records,
)
from models.data import readers, splits, synthetic, writer
from models.evaluation import (
    evaluate,
    metrics,
)
from pipeline.config import DataConfig, PipelineConfig

CUTOFFS = (10, 50, 100)
COLUMNS = ("recall@10", "recall@50", "recall@100", "ndcg@10", "hr@10", "mrr", "coverage@10")
# Share of each user's timeline, the latest, that the pipeline never sees.
FUTURE_FRACTION = 0.2
IALS = "ials"


def _run(config: PipelineConfig, output_dir: str) -> Dict[str, object]:
    result = local_runner.run(config, output_dir)
    if not result.get("pushed"):
        raise RuntimeError(f"the pipeline in {output_dir} pushed no model; see its summary.json")
    return result


def _split_files(result, split: str) -> List[str]:
    """File pattern of one split of the run's interactions ExampleGen output."""
    return [f"{result['examples_uri']}/Split-{split}/*"]


def outer_split(dataset: readers.Dataset, folder: str, fraction: float = FUTURE_FRACTION):
    """Writes the given part of ``dataset`` (each user's first 1 - fraction) to ``folder``.

    Returns:
      (given interactions as columns, {user: later items not interacted with before}).
    """
    inter = dataset.interactions
    idx = splits.temporal_split(inter, fraction)
    given = {key: [values[i] for i in idx[features.TRAIN]] for key, values in inter.items()}
    writer.write_canonical(folder, zip(given[features.USER_ID], given[features.ITEM_ID],
                                       given[features.TIMESTAMP],
                                       given[features.RATING]), dataset.users, dataset.items)
    seen = metrics.group_by_user(given[features.USER_ID], given[features.ITEM_ID])
    later = metrics.group_by_user([inter[features.USER_ID][i] for i in idx[features.EVAL]],
                            [inter[features.ITEM_ID][i] for i in idx[features.EVAL]])
    future = {u: items - seen.get(u, set()) for u, items in later.items()}
    return given, {u: items for u, items in future.items() if items}


def main_table(model_dir: str, given: Dict[str, list], future: Dict[str, set], num_items: int,
               length: int = 100) -> Tuple[Dict[str, Dict[str, float]], Dict[str, object]]:
    """Every model's lists for the users of ``future``, scored on it.

    Returns:
      ({model: metrics}, the baselines' tuned settings).
    """
    users = sorted(future)
    seen = metrics.group_by_user(given[features.USER_ID], given[features.ITEM_ID])
    model = tf.saved_model.load(model_dir)
    lists = {
        evaluate.POPULARITY: metrics.popularity_recommendations(
            metrics.popularity_ranking(given[features.ITEM_ID]), seen, users, length),
    }
    lists[evaluate.EASE], ease_settings = baselines.ease(given, seen, users, length)
    lists[IALS], ials_settings = baselines.ials(given, seen, users, length)
    lists[evaluate.RETRIEVAL] = evaluate.servable_lists(model, "retrieve", users, 256)
    lists[evaluate.MODEL] = evaluate.servable_lists(model, "serving_default", users, 256)
    seen_served = sum(bool(set(lists[evaluate.MODEL][u]) & seen.get(u, set())) for u in users)
    table = {name: metrics.mean_metrics(recs, future, CUTOFFS, num_items) for name, recs in lists.items()}
    table[evaluate.MODEL]["users_served_a_seen_item"] = float(seen_served)
    return table, {evaluate.EASE: ease_settings, IALS: ials_settings}


def score_run(result: Dict[str, object], dataset: readers.Dataset, given: Dict[str, list],
              future: Dict[str, set], top_k: int, data: str, refit: bool = True) -> Dict[str, object]:
    """The main table of a pipeline run on ``given`` (``result``: its summary), printed, with
    the run's own figures beside it."""
    table, tuned = main_table(result["pushed_to"], given, future, len(dataset.items), top_k)
    report = {"data": data, "top_k": top_k, "refit": refit,
              "protocol": f"each user's latest {FUTURE_FRACTION:.0%} held out before the pipeline",
              "main": table, "baselines": tuned,
              "pipeline_inner_eval": (result.get("evaluation") or {}).get("metrics", {}),
              "retrieval_training": result.get("retrieval_training", {}),
              "ranking_training": result.get("ranking_training", {})}
    print(f"\nQuality on later interactions ({report['protocol']}; the pushed model through "
          f"serving_default, lists of {top_k}, seen items never hits; baselines fitted on the "
          f"same given part)")
    print(render(table, COLUMNS))
    print(f"Pushed model: {int(table[evaluate.MODEL]['users_served_a_seen_item'])} users served an item "
          f"they had interacted with. EASE l2 {tuned[evaluate.EASE]['l2']:g}; iALS "
          f"{tuned[IALS]['factors']} factors, alpha {tuned[IALS]['alpha']:g} (tuned on an inner split)")
    return report


def write(report: Dict[str, object], output: str) -> None:
    """``quality.json`` and the main table's chart ``quality.png`` in ``output``."""
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "quality.json"), "w") as f:
        json.dump(report, f, indent=2)
    chart(report["main"], os.path.join(output, "quality.png"))


# --- cold start ---


def cold_split(dataset: readers.Dataset, fraction: float, seed: int):
    """Chooses cold users and cold items (among those with interactions) at random."""
    rng = np.random.default_rng(seed)
    users = sorted(set(dataset.interactions[features.USER_ID]))
    items = sorted(set(dataset.interactions[features.ITEM_ID]))
    cold_users = set(rng.choice(users, max(1, int(len(users) * fraction)), replace=False))
    cold_items = set(rng.choice(items, max(1, int(len(items) * fraction)), replace=False))
    return cold_users, cold_items


def write_without(dataset: readers.Dataset, cold_users, cold_items, folder: str) -> None:
    """The dataset in the canonical layout minus every interaction of cold users or items.

    Users and items stay in users.csv and items.csv: their features are known.
    """
    inter = dataset.interactions
    rows = zip(inter[features.USER_ID], inter[features.ITEM_ID], inter[features.TIMESTAMP],
               inter[features.RATING])
    writer.write_canonical(folder, (r for r in rows if r[0] not in cold_users and r[1] not in cold_items),
                           dataset.users, dataset.items)


def cold_users_table(model, dataset, cold_users, popular: Sequence[str], history: int, k: int,
                     num_items: int) -> Dict[str, Dict[str, float]]:
    """Recall of cold users' interactions: model (demographics; + a short history) vs popularity."""
    histories = splits.Histories(dataset.interactions, features.MAX_HISTORY)
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
                age=tf.constant([int(dataset.users[u][features.AGE]) for u in chunk], tf.int64),
                gender=tf.constant([dataset.users[u][features.GENDER] for u in chunk]),
                occupation=tf.constant([dataset.users[u][features.OCCUPATION] for u in chunk]),
                history=tf.constant(padded, tf.string),
                exclude=tf.constant([[""]] * len(chunk)), k=tf.constant(0))
            for user, row in zip(chunk, response["item_ids"].numpy()):
                lists[user] = [i.decode("utf-8") for i in row if i]  # "" pads a short list
        baseline = metrics.popularity_recommendations(
            popular, {u: set(timeline[u][:given]) for u in users}, users, k)
        out[f"cold users, {label}: model"] = metrics.mean_metrics(lists, held_out, (10, k), num_items)
        out[f"cold users, {label}: popularity"] = metrics.mean_metrics(baseline, held_out, (10, k), num_items)
    return out


def cold_items_table(model, dataset, cold_items, train_items: Sequence[str],
                     k: int = 10) -> Dict[str, Dict[str, float]]:
    """Among the cold items only: recall@k of each known user's cold-item interactions.

    The model ranks cold items by the served embeddings (features only: the
    items had no interactions); the baseline ranks them by the training
    popularity of their genres.
    """
    inter = dataset.interactions
    held_out = metrics.group_by_user(
        [u for u, i in zip(inter[features.USER_ID], inter[features.ITEM_ID]) if i in cold_items],
        [i for i in inter[features.ITEM_ID] if i in cold_items])
    index = model.index
    known = set(arrays.to_str(index.user_ids.numpy()))
    users = sorted(u for u in held_out if u in known)
    held_out = {u: held_out[u] for u in users}
    catalogue = arrays.to_str(index.item_ids.numpy())
    pool = [p for p, item in enumerate(catalogue) if item in cold_items]
    pool_ids = catalogue[pool]
    vectors = tf.gather(index.item_embeddings, pool).numpy()
    genre_counts: Dict[str, int] = {}
    for item in train_items:
        for genre in dataset.items[item][features.GENRES]:
            genre_counts[genre] = genre_counts.get(genre, 0) + 1
    genre_score = np.array([np.mean([genre_counts.get(g,
                                                      0) for g in dataset.items[i][features.GENRES]] or [0])
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
        f"cold items ({len(pool)} items): model": metrics.mean_metrics(lists, held_out, (k,), len(pool)),
        "cold items: genre popularity": metrics.mean_metrics(baseline, held_out, (k,), len(pool)),
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
    # What the pushed model knows: every interaction it was given.
    train = records.read_columns(_split_files(result, features.TRAIN) + _split_files(result, features.EVAL))
    popular = metrics.popularity_ranking(train[features.ITEM_ID])
    table = cold_users_table(model, dataset, cold_users, popular, history, base.top_k,
                             len(dataset.items))
    table.update(cold_items_table(model, dataset, cold_items, train[features.ITEM_ID]))
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
    ax.set_title("Quality on later interactions, same given data")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# The synthetic shapes `make bench-quality` measures side by side. ml-100k: the embedded default
# data (`recsys run`). long-tail: few users, ten times as many items, a wide popularity spread
# and no user file, the regime of GroupLens's ml-latest releases (seed 7: 20% of the items never
# interacted with, 42% twice or less, median 4 interactions an item; ml-latest-small has a
# median of 3).
SHAPES = {
    "ml-100k": {"num_users": 943, "num_items": 1682, "num_interactions": 100_000},
    "long-tail": {"num_users": 600, "num_items": 6000, "num_interactions": 90_000,
                  "popularity_spread": 2.0, "user_features": False},
}
# Shapes whose users have demographics: the cold-start run asks by them.
COLD_START_SHAPES = ("ml-100k",)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="data folder; default: the synthetic shapes")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"synthetic shapes measured without --data, comma-separated, of "
                             f"{', '.join(SHAPES)} (default: all)")
    parser.add_argument("--output", default="bench/results/quality")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=None,
                        help="items retrieval hands the ranker (default: as `recsys run`)")
    parser.add_argument("--no-refit", action="store_true",
                        help="deploy the holdout models (train split only) instead of refitting")
    parser.add_argument("--cold-fraction", type=float, default=0.1,
                        help="share of users and of items removed for the cold-start run")
    parser.add_argument("--cold-history", type=int, default=5,
                        help="interactions a cold user gives at request time")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--synthetic-users", type=int, default=None, help="ml-100k shape's users")
    parser.add_argument("--synthetic-items", type=int, default=None, help="ml-100k shape's items")
    parser.add_argument("--synthetic-interactions", type=int, default=None,
                        help="ml-100k shape's interactions")
    args = parser.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown or not args.shapes:
        parser.error(f"--shapes: unknown shape(s) {unknown}; choose among {', '.join(SHAPES)}")
    return args


def synthetic_data(shape: str, args, folder: str) -> str:
    """The data folder of a synthetic shape (the --synthetic-* flags resize ml-100k)."""
    params = dict(SHAPES[shape], seed=DataConfig().synthetic_seed)
    if shape == "ml-100k":
        for key in ("users", "items", "interactions"):
            if getattr(args, f"synthetic_{key}"):
                params[f"num_{key}"] = getattr(args, f"synthetic_{key}")
    return synthetic.write_canonical(folder, **params)


def measure(data_dir: str, label: str, base: PipelineConfig, output: str, args,
            cold: bool) -> Dict[str, object]:
    """The outer protocol on one data folder: main table (and cold start), written to ``output``."""
    started = time.time()
    base = dataclasses.replace(base, serving_dir=os.path.join(output, "serving"))
    dataset = readers.read_dataset(data_dir)
    given, future = outer_split(dataset, os.path.join(output, "given"))
    config = dataclasses.replace(base, data=dataclasses.replace(
        base.data, data_dir=os.path.join(output, "given")))
    result = _run(config, os.path.join(output, "run"))
    report = score_run(result, dataset, given, future, args.top_k, label, refit=not args.no_refit)
    if cold:
        table = cold_start(data_dir, base, output, args.cold_fraction, args.cold_history)
        report["cold_start"] = table
        print(f"\nCold start ({args.cold_fraction:.0%} of users and of items removed from training)")
        print(render(table, ("recall@10", f"recall@{args.top_k}", "ndcg@10", "hr@10")))
    report["seconds"] = round(time.time() - started, 1)
    write(report, output)
    print(f"\nWrote {output}/quality.json and quality.png ({report['seconds']:.0f} s)")
    return report


def lead(report: Dict[str, object], baseline: str = evaluate.EASE) -> Dict[str, float]:
    """The pushed model's relative lead over ``baseline`` in NDCG@10 and Recall@100."""
    main = report["main"]
    return {m: main[evaluate.MODEL][m] / main[baseline][m] - 1.0 for m in ("ndcg@10", "recall@100")
            if main[baseline].get(m)}


def main(argv=None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    output = os.path.abspath(args.output)
    base = PipelineConfig().with_lists(args.top_k, args.candidates)
    if args.no_refit:
        base = dataclasses.replace(base, retrieval=dataclasses.replace(base.retrieval, refit=False))
    if args.data:
        measure(os.path.abspath(args.data), args.data, base, output, args,
                cold=not args.no_cold_start)
        return 0
    reports = {}
    for shape in args.shapes:
        print(f"\n=== shape {shape}: {SHAPES[shape]}", flush=True)
        folder = os.path.join(output, shape)
        data_dir = synthetic_data(shape, args, os.path.join(folder, "data"))
        reports[shape] = measure(data_dir, f"synthetic {shape}", base, folder, args,
                                 cold=shape in COLD_START_SHAPES and not args.no_cold_start)
    print("\nThe pushed model against EASE, per shape (relative lead; > 0: ahead)")
    for shape, report in reports.items():
        gaps = lead(report)
        print(f"  {shape:<10} NDCG@10 {gaps['ndcg@10']:+.1%}   Recall@100 {gaps['recall@100']:+.1%}   "
              f"({report['main'][evaluate.MODEL]['users']:.0f} users)")
    with open(os.path.join(output, "quality.json"), "w") as f:
        json.dump({shape: {"main": r["main"], "lead_over_ease": lead(r), "seconds": r["seconds"]}
                   for shape, r in reports.items()}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
