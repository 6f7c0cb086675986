"""Trainer user code of the ranking model (``run_fn``).

Its ``base_model`` is the index builder's servable: it supplies user and item
embeddings, popularity, and each user's retrieved candidates, which serve as
hard negatives. Positives are the user's training interactions. The exported
model is the whole recommender (components/serving/recommender.py).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict

import numpy as np
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from components import features as F
from components import io
from components.evaluator import metrics as M
from components.ranking.model import Ranker, pair_features
from components.serving import recommender
from pipeline.config import RankingConfig, from_dict


def _rows_positions(index, columns: Dict[str, np.ndarray]):
    """Known (user row, item position) pairs of an id table."""
    rows = index.lookup_users(tf.constant(columns[F.USER_ID])).numpy()
    positions = index.lookup_items(tf.constant(columns[F.ITEM_ID])).numpy()
    keep = (rows < int(index.user_ids.shape[0])) & (positions >= 0)
    return rows[keep], positions[keep]


def _retrieve(index, users: np.ndarray, batch_size: int = 512):
    """Retrieved candidate positions int [n, c] and query embeddings [n, dim] of user rows."""
    user_ids = index.user_ids.numpy()
    candidates, queries = [], []
    for start in range(0, len(users), batch_size):
        chunk = user_ids[users[start:start + batch_size]]
        positions, _, _, query = index.retrieve_positions(tf.constant(chunk))
        candidates.append(positions.numpy())
        queries.append(query.numpy())
    return np.vstack(candidates), np.vstack(queries)


def _training_pairs(rows, positions, candidates, n_items: int, config, rng):
    """Positives and, per positive, half hard negatives (retrieved) and half uniform ones."""
    n_neg = config.negatives_per_positive
    n_hard = n_neg // 2
    hard_pool = candidates[rows, : config.hard_negatives]
    hard = hard_pool[np.arange(len(rows))[:, None], rng.integers(0, hard_pool.shape[1], (len(rows), n_hard))]
    uniform = rng.integers(0, n_items, (len(rows), n_neg - n_hard))
    neg_positions = np.concatenate([hard, uniform], axis=1).reshape(-1)
    neg_rows = np.repeat(rows, n_neg)
    all_rows = np.concatenate([rows, neg_rows])
    all_positions = np.concatenate([positions, neg_positions])
    labels = np.concatenate([np.ones(len(rows)), np.zeros(len(neg_rows))]).astype(np.float32)
    return all_rows, all_positions, labels


def _auc_against_candidates(ranker, tensors, rows, positions, candidates) -> Dict[str, float]:
    """AUC of held-out positives against the same users' retrieved candidates."""
    auc = tf.keras.metrics.AUC()
    neg_rows = np.repeat(rows, candidates.shape[1] // 4)
    neg_positions = candidates[rows, : candidates.shape[1] // 4].reshape(-1)
    for r, p, label in ((rows, positions, 1.0), (neg_rows, neg_positions, 0.0)):
        for start in range(0, len(r), 8192):
            chunk_rows, chunk_positions = r[start:start + 8192], p[start:start + 8192]
            logits = ranker(pair_features(*tensors, chunk_rows, chunk_positions))
            auc.update_state(tf.fill([len(chunk_rows)], label), tf.sigmoid(logits))
    return {"eval_auc_vs_retrieved": float(auc.result().numpy()), "eval_pairs": int(len(rows))}


def ndcg_of_orders(ranker, tensors, rows, positions, candidates, k: int = 10) -> Dict[str, float]:
    """NDCG@k on held-out pairs of the retrieved candidates in retrieval order and ranked order."""
    held: Dict[int, set] = {}
    for row, position in zip(rows, positions):
        held.setdefault(int(row), set()).add(int(position))
    users = np.array(sorted(held), dtype=np.int64)
    totals = {"retrieval": 0.0, "ranked": 0.0}
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        lists = candidates[chunk]
        grid = np.broadcast_to(chunk[:, None], lists.shape)
        logits = ranker(pair_features(*tensors, grid.reshape(-1), lists.reshape(-1))).numpy()
        ranked = np.take_along_axis(lists, np.argsort(-logits.reshape(lists.shape), axis=1), axis=1)
        for user, by_retrieval, by_ranker in zip(chunk, lists, ranked):
            totals["retrieval"] += M.user_metrics(list(by_retrieval), held[user], (k,))[f"ndcg@{k}"]
            totals["ranked"] += M.user_metrics(list(by_ranker), held[user], (k,))[f"ndcg@{k}"]
    n = max(len(users), 1)
    return {f"eval_ndcg@{k}_retrieval_order": totals["retrieval"] / n,
            f"eval_ndcg@{k}_ranked_order": totals["ranked"] / n, "eval_ndcg_users": int(len(users))}


def run_fn(fn_args: FnArgs) -> None:
    """Trains the ranker on retrieval's candidates and exports the full recommender.

    custom_config: {'ranking': asdict(RankingConfig), 'top_k': int}.
    """
    config = from_dict(RankingConfig, fn_args.custom_config["ranking"])
    top_k = int(fn_args.custom_config["top_k"])
    tf.keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    index = tf.saved_model.load(fn_args.base_model)
    n_items = int(index.item_embeddings.shape[0])
    n_users = int(index.user_ids.shape[0])

    train_rows, train_positions = _rows_positions(index, io.read_columns(fn_args.train_files))
    known_users = np.unique(train_rows)
    retrieved, queries = _retrieve(index, known_users)
    candidates = np.zeros((n_users, retrieved.shape[1]), np.int64)
    candidates[known_users] = retrieved
    user_embeddings = np.zeros((n_users, queries.shape[1]), np.float32)
    user_embeddings[known_users] = queries
    tensors = (tf.constant(user_embeddings), index.item_embeddings, tf.math.log1p(index.popularity))
    rows, positions, labels = _training_pairs(train_rows, train_positions, candidates, n_items,
                                              config, rng)
    order = rng.permutation(len(labels))
    dataset = (tf.data.Dataset.from_tensor_slices((rows[order], positions[order], labels[order]))
               .batch(config.batch_size)
               .map(lambda r, p, y: (pair_features(*tensors, r, p), y)))
    ranker = Ranker(config.hidden_units)
    ranker.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate),
                   loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                   metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])
    history = ranker.fit(dataset, epochs=config.epochs, verbose=2)

    eval_rows, eval_positions = _rows_positions(index, io.read_columns(fn_args.eval_files))
    orders = ndcg_of_orders(ranker, tensors, eval_rows, eval_positions, candidates)
    # The ranker is used only where it improves on retrieval's own order on held-out data;
    # otherwise the recommender serves retrieval's order and the summary says so.
    use_ranker = orders["eval_ndcg@10_ranked_order"] > orders["eval_ndcg@10_retrieval_order"]
    summary = {"train_pairs": int(len(labels)),
               "loss": [float(v) for v in history.history["loss"]],
               **_auc_against_candidates(ranker, tensors, eval_rows, eval_positions, candidates),
               **orders, "ranker_used": bool(use_ranker)}
    logging.info("Ranking training: %s", summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    recommender.save(recommender.Recommender(index, ranker, top_k, use_ranker),
                     fn_args.serving_model_dir)
