"""Trainer user code of the ranking model (``run_fn``).

Its ``base_model`` is the index builder's servable: the query tower, the
item embeddings, popularity, and retrieval itself, whose candidates are the
ranker's lists (hard negatives). Training lists replay serving at anchors
inside the training split (models/ranking/lists.py); the ranker is then
checked on the eval split: NDCG@10 of the servable's retrieved lists in
retrieval order and in ranked order, same lists, same users. The export is
the ranker and that verdict (models/ranking/export.py); the recommender
assembly puts it together with the index and the re-ranking rules.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from models import devices, features, holdout, records, warm_states
from models.config import decode
from models.evaluation import metrics
from models.index import contract
from models.index.contract import Retrieved
from models.progress import progress
from models.ranking import export, lists
from models.ranking import warm as ranking_warm
from models.ranking.config import RankingConfig
from models.ranking.features import SCALARS, list_features
from models.ranking.model import LOSS_FUNCTIONS, Ranker
from models.ranking.tables import Tables, interactions
from models.ranking.tables import read as read_tables

# Eval lists are scored in chunks of this many users (the neighbour features hold
# [users, candidates, history x neighbours] floats).
_CHUNK = 64


def training_lists(index, data: lists.Interactions, config: RankingConfig) -> Dict[str, np.ndarray]:
    """Queries, retrieved candidates and labels at the anchors of the training timelines."""
    cut = lists.anchors(data, config.anchor_fractions, config.label_window, config.min_interactions)
    columns = data.columns
    queries = []
    for start in range(0, len(cut.rows), 1024):
        rows, times = cut.rows[start:start + 1024], cut.times[start:start + 1024]
        query_features = {key: tf.constant(columns[key][rows]) for key in
                    (features.USER_ID, features.AGE, features.GENDER, features.OCCUPATION)}
        query_features[features.HISTORY] = tf.constant(data.history(rows), tf.string)
        query_features[features.TIMESTAMP] = tf.constant(times)
        queries.append(index.encoder.query_embedding(query_features)["embedding"].numpy())
    queries = np.vstack(queries) if queries else np.zeros((0, index.item_embeddings.shape[1]),
                                                          np.float32)
    # What the served ranker ranks, read from the index it ranks for (the one place the list
    # length is derived: IndexConfig.for_list, in the index builder's task as in the config).
    length = contract.candidates_of(index)
    positions, scores = lists.top_candidates(queries, index.item_embeddings.numpy(), cut.excluded,
                                         length)
    history = np.asarray(index.lookup_items(tf.constant(
        data.history(cut.rows).reshape(-1), tf.string)).numpy(), np.int32)
    out = {"query": queries.astype(np.float32), "positions": positions, "scores": scores,
           "popularity": lists.other_users_popularity(index.popularity.numpy(), positions, cut.own),
           "history": history.reshape(len(cut.rows), features.MAX_HISTORY), "time": cut.times,
           # Candidates the user interacted with (later in the timeline): features that count
           # interactions leave this user out for them, as a served list never holds them.
           "own": lists.label_matrix(positions, cut.own) > 0,
           "labels": lists.label_matrix(positions, cut.labels)}
    keep = out["labels"].sum(axis=1) > 0
    return {key: value[keep] for key, value in out.items()}


def train(item_tables: Tables, data: Dict[str, np.ndarray], config: RankingConfig,
          served: Optional[List[np.ndarray]] = None) -> Tuple[Ranker, Dict[str, object]]:
    """Fits the ranker on training lists with the configured loss.

    With ``served``, a served ranker's state (models/ranking/warm.py), the ranker starts from its
    weights and trains ``config.warm_epochs`` epochs; a state of other shapes starts it cold.

    Returns:
      (the ranker, how it started: {"warm": bool, "epochs": int, and "reason" when cold}).
    """
    ranker = Ranker(config.hidden_units, config.cross_layers, config.projection_dim)
    sample = slice(0, min(len(data["labels"]), 2000))
    scalars = item_tables.features(*(data[k][sample] for k in ("query", "positions", "scores",
                                                         "popularity", "history", "time",
                                                         "own")))[SCALARS]
    ranker.adapt(tf.reshape(scalars, [-1, scalars.shape[-1]]))
    loss_fn = LOSS_FUNCTIONS[config.loss]
    optimizer = tf.keras.optimizers.Adam(config.learning_rate)
    first_seen = tf.constant(item_tables.first_seen)
    table = tuple(map(tf.constant, item_tables.neighbours))
    trend = tuple(map(tf.constant, item_tables.trend))

    def inputs_of(query, positions, scores, popularity, history, time, own):
        return list_features(query, item_tables.item_embeddings, positions, scores, popularity,
                             tf.gather(first_seen, positions), history, time, table, trend, own)

    keys = ("query", "positions", "scores", "popularity", "history", "time", "own", "labels")
    tensors = [tf.constant(data[k]) for k in keys]
    batch_size = config.batch_size

    # One call per epoch: the epoch's batches run in one graph loop, without a return to Python
    # between them (as retrieval's steps per call). AutoGraph off: the step branches on nothing
    # but Python values, and AutoGraph would convert the Keras code it calls (tf_keras is not on
    # its list of packages to leave alone: seconds of tracing).
    @tf.function(autograph=False)
    def epoch(order):
        count = tf.size(order)
        steps = (count + batch_size - 1) // batch_size

        def body(at, total):
            rows = order[at * batch_size:tf.minimum((at + 1) * batch_size, count)]
            *batch, labels = (tf.gather(t, rows) for t in tensors)
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, ranker(inputs_of(*batch)), tf.math.is_finite(batch[2]))
            optimizer.apply_gradients(zip(tape.gradient(loss, ranker.trainable_variables),
                                          ranker.trainable_variables))
            return at + 1, total + loss

        _, total = tf.while_loop(lambda at, _: at < steps, body, (tf.constant(0), tf.constant(0.0)))
        return total / tf.cast(tf.maximum(steps, 1), tf.float32)

    started: Dict[str, object] = {"warm": False, "epochs": config.epochs}
    ranker(inputs_of(*(t[:1] for t in tensors[:-1])))  # its variables, before the graph loop
    optimizer.build(ranker.trainable_variables)
    if served is not None:
        reason = ranking_warm.mismatch(served, ranker)
        if reason is None:
            ranking_warm.apply(served, ranker)
            started = {"warm": True, "epochs": config.warm_epochs}
        else:
            logging.warning("Ranking: cold start: %s", reason)
            started["reason"] = reason
    rng = np.random.default_rng(config.seed)
    epochs = started["epochs"]
    for at in range(epochs):
        loss = float(epoch(tf.constant(rng.permutation(len(data["labels"])))))
        progress("ranking epoch %d/%d%s: %s loss %.4f", at + 1, epochs,
                 " (warm)" if started["warm"] else "", config.loss, loss)
    return ranker, started


def eval_ndcg(ranker, item_tables: Tables, index, files, k: int = 10) -> Dict[str, float]:
    """NDCG@k on the eval split of the servable's retrieved lists, retrieval order vs ranked
    (``ranker`` None: retrieval order twice)."""
    held = interactions(index, files)
    relevant: Dict[str, set] = {}
    for user, position in zip(held.columns[features.USER_ID], held.positions):
        relevant.setdefault(user, set()).add(int(position))
    candidates = np.array(sorted(relevant), dtype=object)
    rows = index.lookup_users(tf.constant(candidates, tf.string)).numpy()
    users = candidates[rows < contract.users_of(index)]
    totals = {"retrieval": 0.0, "ranked": 0.0}
    for start in range(0, len(users), _CHUNK):
        chunk = users[start:start + _CHUNK]
        found = Retrieved(*(value.numpy() for value in Retrieved.of(
            index.retrieve_positions(tf.constant(chunk, tf.string)))))
        if ranker is None:
            logits = found.scores
        else:
            inputs = item_tables.features(found.query, found.positions, found.scores,
                                     item_tables.popularity[found.positions], found.history, found.time)
            logits = np.where(np.isfinite(found.scores), ranker(inputs).numpy(), -np.inf)
        ranked = np.take_along_axis(found.positions, np.argsort(-logits, axis=1, kind="stable"),
                                    axis=1)
        for user, by_retrieval, by_ranker in zip(chunk, found.positions, ranked):
            totals["retrieval"] += metrics.user_metrics(list(by_retrieval), relevant[user], (k,))[f"ndcg@{k}"]
            totals["ranked"] += metrics.user_metrics(list(by_ranker), relevant[user], (k,))[f"ndcg@{k}"]
    n = max(len(users), 1)
    return {f"eval_ndcg@{k}_retrieval_order": totals["retrieval"] / n,
            f"eval_ndcg@{k}_ranked_order": totals["ranked"] / n, "eval_ndcg_users": int(len(users))}


def _fit_ranker(index, files, config: RankingConfig, served_state: Optional[str] = None):
    """(interactions of ``files``, their Tables, the ranker trained on their lists or None,
    the training lists, how it started) for the servable ``index``; ``served_state``: the
    served ranker's state file to start from, when there is one."""
    data, item_tables = read_tables(index, files, config.neighbours)
    tf.keras.utils.set_random_seed(config.seed)
    training = training_lists(index, data, config)
    labels = training["labels"]
    logging.info("Ranking: %d training lists of %d candidates (%.2f positives per list)",
                 len(labels), labels.shape[1] if len(labels) else 0,
                 float(labels.sum(axis=1).mean()) if len(labels) else 0.0)
    if not len(labels):
        return data, item_tables, None, training, {"warm": False, "epochs": 0,
                                                   "reason": "no training list"}
    served = ranking_warm.load(served_state) if served_state else None
    ranker, started = train(item_tables, training, config, served)
    if served is None:
        started["reason"] = ("no served ranker was handed on: the retrieval model did not start "
                             "from the served one (a ranker reads its embeddings), or the served "
                             "version carries no ranker state (an older release)"
                             if served_state else "no served ranker to start from")
    return data, item_tables, ranker, training, started


def _served_state(handed: str, which: str) -> Optional[str]:
    """Where the served ranker's ``which`` state would be among the states handed on with the
    index (None: the index carries no states at all, e.g. from an older release)."""
    folder = os.path.join(handed, which)
    return os.path.join(folder, warm_states.SERVED_RANKER) if tf.io.gfile.isdir(folder) else None


def _save(ranker, index, use_ranker: bool, config: RankingConfig, export_dir: str) -> None:
    export.save(ranker, int(index.item_embeddings.shape[1]),
                export.RankerCard(use_ranker=bool(use_ranker and ranker is not None),
                                  neighbours=config.neighbours, loss=config.loss), export_dir)


def run_fn(fn_args: FnArgs) -> None:
    """Trains the ranker on retrieval's candidates and exports it with its held-out verdict.

    The ranker learns from lists of the train split served by the holdout index
    (``models/holdout.py``) and is checked on the eval split; it is used only
    where it beats retrieval's order there. That ranker is exported as the
    holdout twin. Where the index was refitted (it has a twin), the deployed
    ranker (``Format-Serving``) learns again, with the same settings, from
    lists of every interaction served by the deployed index, whose embeddings
    it reads; otherwise the one ranker is exported as the deployed one.

    custom_config: the ranking section, ``models.config.fields(RankingConfig)``.
    The ranker trains on one device (a GPU when there is one, with memory growth): its custom
    loop over a few thousand lists is not worth a MirroredStrategy.
    """
    devices.gpus()
    config = decode(RankingConfig, fn_args.custom_config)
    twin = holdout.holdout_dir(fn_args.base_model)
    has_twin = tf.io.gfile.isdir(twin)
    index = contract.load(twin if has_twin else fn_args.base_model)
    # The served rankers' states, handed on with the index when its retrieval models started
    # warm (models/ranking/warm.py); this run's go beside its exports for the assembly to push.
    handed, states = warm_states.beside(fn_args.base_model), warm_states.beside(fn_args.serving_model_dir)
    _, item_tables, ranker, training, started = _fit_ranker(
        index, fn_args.train_files, config, _served_state(handed, warm_states.HOLDOUT))
    if ranker is None:
        logging.warning("Ranking: no training list (no user has %d training interactions with "
                        "one among the retrieved candidates); serving retrieval's order",
                        config.min_interactions)
    orders = eval_ndcg(ranker, item_tables, index, fn_args.eval_files)
    # The ranker is used only where it improves on retrieval's own order on held-out data;
    # otherwise the recommender serves retrieval's order and the summary says so.
    use_ranker = orders["eval_ndcg@10_ranked_order"] > orders["eval_ndcg@10_retrieval_order"]
    summary = {"loss": config.loss, "train_lists": int(len(training["labels"])),
               "train_positives": int(training["labels"].sum()), **orders,
               "ranker_used": bool(use_ranker), "refit_lists": None, "refit_positives": None,
               "warm_start": {warm_states.HOLDOUT: started}}
    if ranker is not None:
        ranking_warm.save(ranker, os.path.join(states, warm_states.HOLDOUT))
    if has_twin:
        _save(ranker, index, use_ranker, config, holdout.holdout_dir(fn_args.serving_model_dir))
        index = contract.load(fn_args.base_model)
        if use_ranker:
            all_files = list(records.expand(fn_args.train_files)) + list(
                records.expand(fn_args.eval_files))
            _, _, ranker, training, started = _fit_ranker(
                index, all_files, config, _served_state(handed, warm_states.DEPLOYED))
            summary["refit_lists"] = int(len(training["labels"]))
            summary["refit_positives"] = int(training["labels"].sum())
            summary["warm_start"][warm_states.DEPLOYED] = started
    if ranker is not None:
        ranking_warm.save(ranker, os.path.join(states, warm_states.DEPLOYED))
    logging.info("Ranking training: %s", summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _save(ranker, index, use_ranker, config, fn_args.serving_model_dir)
