"""Trainer user code of the ranking model (``run_fn``).

Its ``base_model`` is the index builder's servable: the query tower, the
item embeddings, popularity, and retrieval itself, whose candidates are the
ranker's lists (hard negatives). Training lists replay serving at anchors
inside the training split (models/ranking/lists.py); the ranker is then
checked on the eval split: NDCG@10 of the servable's retrieved lists in
retrieval order and in ranked order, same lists, same users. The exported
model is the whole recommender (recommender/servable.py).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict

import numpy as np
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from models import features, holdout, records
from models.evaluation import metrics
from models.index import servable
from models.ranking import lists, neighbours
from models.ranking.features import SCALARS, list_features
from models.ranking.model import LOSS_FUNCTIONS, Ranker
from pipeline.config import RankingConfig, RerankConfig, from_dict
from recommender import rerank
from recommender import servable as recommender

# Eval lists are scored in chunks of this many users (the neighbour features hold
# [users, candidates, history x neighbours] floats).
_CHUNK = 64


class Tables:
    """Per-item tables the features read: embeddings and popularity (the index's), and
    first-seen time, daily counts and item-to-item neighbours of the interactions ``data``."""

    def __init__(self, index, data: lists.Interactions, n_neighbours: int):
        n_items = int(index.item_embeddings.shape[0])
        self.item_embeddings = index.item_embeddings
        self.popularity = index.popularity.numpy()
        self.first_seen = lists.first_seen(data, n_items)
        self.trend = lists.trend(data, n_items)
        self.neighbours = (neighbours.item_neighbours(data.columns[features.USER_ID], data.positions,
                                                      n_items, n_neighbours)
                           if n_neighbours else neighbours.none(n_items))

    def features(self, query, positions, scores, popularity, history, time, own=None):
        return list_features(tf.constant(query), self.item_embeddings, tf.constant(positions),
                             tf.constant(scores), tf.constant(popularity, tf.float32),
                             tf.constant(self.first_seen[positions]), tf.constant(history),
                             tf.constant(time, tf.int64), tuple(map(tf.constant, self.neighbours)),
                             tuple(map(tf.constant, self.trend)),
                             None if own is None else tf.constant(own))


def training_lists(index, data: lists.Interactions, config: RankingConfig) -> Dict[str, np.ndarray]:
    """Queries, retrieved candidates and labels at the anchors of the training timelines."""
    cut = lists.anchors(data, config.anchor_fractions, config.label_window, config.min_interactions)
    columns = data.columns
    queries = []
    for start in range(0, len(cut.rows), 1024):
        rows, times = cut.rows[start:start + 1024], cut.times[start:start + 1024]
        query_features = {key: tf.constant(columns[key][rows]) for key in
                    (features.USER_ID, features.AGE, features.GENDER, features.OCCUPATION)}
        query_features[features.HISTORY] = tf.constant(columns[features.HISTORY][rows], tf.string)
        query_features[features.TIMESTAMP] = tf.constant(times)
        queries.append(index.encoder.query_embedding(query_features)["embedding"].numpy())
    queries = np.vstack(queries) if queries else np.zeros((0, index.item_embeddings.shape[1]),
                                                          np.float32)
    length = min(config.list_length, servable.candidates_of(index))
    positions, scores = lists.top_candidates(queries, index.item_embeddings.numpy(), cut.excluded,
                                         length)
    history = np.asarray(index.lookup_items(tf.constant(
        columns[features.HISTORY][cut.rows].reshape(-1), tf.string)).numpy(), np.int32)
    out = {"query": queries.astype(np.float32), "positions": positions, "scores": scores,
           "popularity": lists.other_users_popularity(index.popularity.numpy(), positions, cut.own),
           "history": history.reshape(len(cut.rows), features.MAX_HISTORY), "time": cut.times,
           # Candidates the user interacted with (later in the timeline): features that count
           # interactions leave this user out for them, as a served list never holds them.
           "own": lists.label_matrix(positions, cut.own) > 0,
           "labels": lists.label_matrix(positions, cut.labels)}
    keep = out["labels"].sum(axis=1) > 0
    return {key: value[keep] for key, value in out.items()}


def train(tables: Tables, data: Dict[str, np.ndarray], config: RankingConfig) -> Ranker:
    """Fits the ranker on training lists with the configured loss."""
    ranker = Ranker(config.hidden_units, config.cross_layers, config.projection_dim)
    sample = slice(0, min(len(data["labels"]), 2000))
    scalars = tables.features(*(data[k][sample] for k in ("query", "positions", "scores",
                                                         "popularity", "history", "time",
                                                         "own")))[SCALARS]
    ranker.adapt(tf.reshape(scalars, [-1, scalars.shape[-1]]))
    loss_fn = LOSS_FUNCTIONS[config.loss]
    optimizer = tf.keras.optimizers.Adam(config.learning_rate)

    @tf.function
    def step(query, positions, scores, popularity, history, time, own, labels):
        inputs = list_features(query, tables.item_embeddings, positions, scores, popularity,
                               tf.gather(first_seen, positions), history, time, table, trend,
                               own)
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, ranker(inputs), tf.math.is_finite(scores))
        optimizer.apply_gradients(zip(tape.gradient(loss, ranker.trainable_variables),
                                      ranker.trainable_variables))
        return loss

    first_seen = tf.constant(tables.first_seen)
    table = tuple(map(tf.constant, tables.neighbours))
    trend = tuple(map(tf.constant, tables.trend))
    rng = np.random.default_rng(config.seed)
    keys = ("query", "positions", "scores", "popularity", "history", "time", "own", "labels")
    for epoch in range(config.epochs):
        order = rng.permutation(len(data["labels"]))
        losses = [float(step(*(tf.constant(data[k][order[s:s + config.batch_size]]) for k in keys)))
                  for s in range(0, len(order), config.batch_size)]
        logging.info("Ranking epoch %d/%d: %s loss %.4f", epoch + 1, config.epochs, config.loss,
                     float(np.mean(losses)) if losses else float("nan"))
    return ranker


def eval_ndcg(ranker, tables: Tables, index, files, k: int = 10) -> Dict[str, float]:
    """NDCG@k on the eval split of the servable's retrieved lists, retrieval order vs ranked
    (``ranker`` None: retrieval order twice)."""
    held = lists.read(files, lambda ids: index.lookup_items(tf.constant(ids, tf.string)).numpy())
    relevant: Dict[str, set] = {}
    for user, position in zip(held.columns[features.USER_ID], held.positions):
        relevant.setdefault(user, set()).add(int(position))
    candidates = np.array(sorted(relevant), dtype=object)
    rows = index.lookup_users(tf.constant(candidates, tf.string)).numpy()
    users = candidates[rows < servable.users_of(index)]
    totals = {"retrieval": 0.0, "ranked": 0.0}
    for start in range(0, len(users), _CHUNK):
        chunk = users[start:start + _CHUNK]
        found = {key: value.numpy() for key, value in
                 index.retrieve_positions(tf.constant(chunk, tf.string)).items()}
        if ranker is None:
            logits = found["scores"]
        else:
            inputs = tables.features(found["query"], found["positions"], found["scores"],
                                     tables.popularity[found["positions"]], found["history"],
                                     found["time"])
            logits = np.where(np.isfinite(found["scores"]), ranker(inputs).numpy(), -np.inf)
        ranked = np.take_along_axis(found["positions"], np.argsort(-logits, axis=1, kind="stable"),
                                    axis=1)
        for user, by_retrieval, by_ranker in zip(chunk, found["positions"], ranked):
            totals["retrieval"] += metrics.user_metrics(list(by_retrieval), relevant[user], (k,))[f"ndcg@{k}"]
            totals["ranked"] += metrics.user_metrics(list(by_ranker), relevant[user], (k,))[f"ndcg@{k}"]
    n = max(len(users), 1)
    return {f"eval_ndcg@{k}_retrieval_order": totals["retrieval"] / n,
            f"eval_ndcg@{k}_ranked_order": totals["ranked"] / n, "eval_ndcg_users": int(len(users))}


def _read(index, files, config: RankingConfig):
    """(interactions of ``files`` placed in ``index``'s catalogue, their Tables)."""
    data = lists.read(files, lambda ids: index.lookup_items(tf.constant(ids, tf.string)).numpy())
    return data, Tables(index, data, config.neighbours)


def _fit_ranker(index, files, config: RankingConfig):
    """(interactions of ``files``, their Tables, the ranker trained on their lists or None,
    the training lists) for the servable ``index``."""
    data, tables = _read(index, files, config)
    tf.keras.utils.set_random_seed(config.seed)
    lists = training_lists(index, data, config)
    logging.info("Ranking: %d training lists of %d candidates (%.2f positives per list)",
                 len(lists["labels"]), lists["labels"].shape[1] if len(lists["labels"]) else 0,
                 float(lists["labels"].sum(axis=1).mean()) if len(lists["labels"]) else 0.0)
    ranker = train(tables, lists, config) if len(lists["labels"]) else None
    return data, tables, ranker, lists


def _export(index, ranker, data, tables, rules, top_k: int, use_ranker: bool, export_dir: str):
    disliked = rerank.disliked(data, rules.dislike_rating, index)
    recommender.save(recommender.Recommender(
        index, ranker, rules, top_k, tables.first_seen, disliked, use_ranker, tables.neighbours,
        tables.trend), export_dir)


def run_fn(fn_args: FnArgs) -> None:
    """Trains the ranker on retrieval's candidates and exports the full recommender.

    The ranker learns from lists of the train split served by the holdout index
    (``models/holdout.py``) and is checked on the eval split; it is used
    only where it beats retrieval's order there. The recommender that knows the
    train split only is exported as the holdout twin (the Evaluator's gate
    scores it). The deployed recommender (``Format-Serving``) is assembled on
    the deployed index, which knows every interaction, with the item tables and
    dislikes of every interaction; with ``refit``, its ranker learns again from
    lists of every interaction served by that index (its retrieval model was
    refitted: the ranker reads its embeddings).

    custom_config: {'ranking': asdict(RankingConfig), 'rerank': asdict(RerankConfig),
    'top_k': int, 'refit': bool}.
    """
    config = from_dict(RankingConfig, fn_args.custom_config["ranking"])
    rules = from_dict(RerankConfig, fn_args.custom_config["rerank"])
    top_k = int(fn_args.custom_config["top_k"])
    refit = bool(fn_args.custom_config.get("refit", False))
    twin = holdout.holdout_dir(fn_args.base_model)
    has_twin = tf.io.gfile.isdir(twin)
    index = tf.saved_model.load(twin if has_twin else fn_args.base_model)
    data, tables, ranker, lists = _fit_ranker(index, fn_args.train_files, config)
    if ranker is None:
        logging.warning("Ranking: no training list (no user has %d training interactions with "
                        "one among the retrieved candidates); serving retrieval's order",
                        config.min_interactions)
    orders = eval_ndcg(ranker, tables, index, fn_args.eval_files)
    # The ranker is used only where it improves on retrieval's own order on held-out data;
    # otherwise the recommender serves retrieval's order and the summary says so.
    use_ranker = orders["eval_ndcg@10_ranked_order"] > orders["eval_ndcg@10_retrieval_order"]
    summary = {"loss": config.loss, "train_lists": int(len(lists["labels"])),
               "train_positives": int(lists["labels"].sum()), **orders,
               "ranker_used": bool(use_ranker), "refit_lists": None}
    if has_twin:
        _export(index, ranker, data, tables, rules, top_k, use_ranker,
                holdout.holdout_dir(fn_args.serving_model_dir))
        index = tf.saved_model.load(fn_args.base_model)
        all_files = list(records.expand(fn_args.train_files)) + list(records.expand(fn_args.eval_files))
        if refit and use_ranker:
            data, tables, ranker, lists = _fit_ranker(index, all_files, config)
            summary["refit_lists"] = int(len(lists["labels"]))
        else:
            data, tables = _read(index, all_files, config)
    logging.info("Ranking training: %s", summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _export(index, ranker, data, tables, rules, top_k, use_ranker and ranker is not None,
            fn_args.serving_model_dir)
