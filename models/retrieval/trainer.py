"""Trainer user code of the two-tower retrieval model (``run_fn``).

Reads the Transform outputs once to gather what training needs besides the
batches: each item's share of the interactions (logQ), each item's candidate
features (uniform negatives, evaluation) and, for early stopping, the eval
split's users as the servable will see them: their history up to the end of
training, their training items (excluded) and their held-out items.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import types
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from models import arrays, devices, features, holdout, records, warm_states
from models.config import decode
from models.progress import progress
from models.retrieval import export
from models.retrieval import warm as warm_start
from models.retrieval.config import RetrievalConfig
from models.retrieval.model import CANDIDATE_FEATURES, QUERY_FEATURES, TwoTowerModel

# Training steps per call of Keras's compiled train function (``steps_per_execution``): the
# batches of one call run in one graph loop, without a return to Python between them. The
# default data's holdout training (313 batches an epoch, 2 cores), replayed on one run's
# Transform output at seeds 7, 11, 42: 2.6 s an epoch one batch a call, 1.84 s at 32 (2.37 s at
# 128), 35.6 s -> 25.4 s the whole fit on average, one more trace of about 1 s; best eval
# Recall@100 0.4410 -> 0.4401 on average (the batches' order and dropout draws differ).
STEPS_PER_CALL = 32



def _dataset(files, tft_output, batch_size: int, seed: int, shuffle: bool) -> tf.data.Dataset:
    spec = tft_output.transformed_feature_spec()
    ds = tf.data.TFRecordDataset(records.expand(files), compression_type="GZIP")
    if shuffle:
        ds = ds.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    return (ds.batch(batch_size)
            .map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


@dataclasses.dataclass
class TrainingData:
    """What one pass over the transformed training split yields.

    Attributes:
      counts: float64 [items + 1], interactions per item index.
      item_table: candidate features of every item index (row 0: padding).
      seen: user index -> item indices interacted with in training.
    """

    counts: np.ndarray
    item_table: Dict[str, np.ndarray]
    seen: Dict[int, np.ndarray]


def scan_training(dataset: tf.data.Dataset, num_items: int) -> TrainingData:
    counts = np.zeros(num_items + 1, dtype=np.float64)
    table: Dict[str, np.ndarray] = {}
    seen: Dict[int, List[np.ndarray]] = {}
    for batch in dataset.as_numpy_iterator():
        items = batch[features.ITEM_IDX]
        counts += np.bincount(items, minlength=num_items + 1)
        for key in CANDIDATE_FEATURES:
            if key not in table:
                table[key] = np.zeros((num_items + 1,) + batch[key].shape[1:], batch[key].dtype)
            table[key][items] = batch[key]
        users = batch[features.USER_IDX]
        for group in arrays.runs(users, np.argsort(users, kind="stable")):
            seen.setdefault(int(users[group[0]]), []).append(items[group])
    table[features.ITEM_IDX] = np.arange(num_items + 1, dtype=np.int64)
    return TrainingData(counts, table, {u: np.unique(np.concatenate(v)) for u, v in seen.items()})


@dataclasses.dataclass
class EvalUsers:
    """Eval-split users as the servable sees them after training.

    Attributes:
      queries: query features of each user's earliest eval interaction (its
        history is the user's training history): arrays [users, ...].
      targets: each user's held-out item indices (0 = not in the vocabulary,
        counted as a miss).
      seen: each user's training item indices (excluded from the ranking).
    """

    queries: Dict[str, np.ndarray]
    targets: List[np.ndarray]
    seen: List[np.ndarray]


def scan_eval(dataset: tf.data.Dataset, seen: Dict[int, np.ndarray], max_users: int,
              seed: int) -> EvalUsers:
    columns: Dict[str, list] = {key: [] for key in QUERY_FEATURES + (features.ITEM_IDX,)}
    for batch in dataset.as_numpy_iterator():
        for key in columns:
            columns[key].append(batch[key])
    data = {key: np.concatenate(value) for key, value in columns.items()}
    users = data[features.USER_IDX]
    length = np.count_nonzero(data[features.HISTORY_IDS], axis=1)
    # Each user's rows, earliest first: by time, then by history length (same-second interactions).
    groups = arrays.runs(users, np.lexsort((length, data[features.TIME_SCALED], users)))
    if len(groups) > max_users:
        chosen = np.sort(np.random.default_rng(seed).choice(len(groups), max_users, replace=False))
        groups = [groups[g] for g in chosen]
    first = np.array([group[0] for group in groups], dtype=np.int64)
    targets = [data[features.ITEM_IDX][group] for group in groups]
    empty = np.zeros(0, np.int64)
    return EvalUsers({key: data[key][first] for key in QUERY_FEATURES}, targets,
                     [seen.get(int(users[i]), empty) for i in first])


def recall_at_k(model: TwoTowerModel, eval_users: EvalUsers, item_table: Dict[str, np.ndarray],
                k: int) -> float:
    """Recall@k of the eval users over every item index, training items excluded."""
    items = model.candidate_tower(item_table).numpy()
    hits = []
    n = len(eval_users.targets)
    for start in range(0, n, 1024):
        queries = {key: value[start:start + 1024] for key, value in eval_users.queries.items()}
        scores = model.query_tower(queries).numpy() @ items.T
        scores[:, 0] = -np.inf
        for row, seen in enumerate(eval_users.seen[start:start + 1024]):
            scores[row, seen] = -np.inf
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        for row, targets in enumerate(eval_users.targets[start:start + 1024]):
            hits.append(np.isin(targets, top[row]).mean())
    return float(np.mean(hits)) if hits else 0.0


class RecallCallback(tf.keras.callbacks.Callback):
    """Adds ``val_recall_at_<k>`` to the epoch logs, for EarlyStopping and the history."""

    def __init__(self, eval_users: EvalUsers, item_table: Dict[str, np.ndarray], k: int):
        super().__init__()
        self._eval_users, self._item_table, self._k = eval_users, item_table, k
        self.users = len(eval_users.targets)
        self.name = f"val_recall_at_{k}"
        self.seconds = 0.0  # spent evaluating, not training

    def on_epoch_end(self, epoch, logs=None):
        start = time.time()
        value = recall_at_k(self.model, self._eval_users, self._item_table, self._k)
        self.seconds += time.time() - start
        if logs is not None:
            logs[self.name] = value
        logging.info("epoch %d: %s = %.4f", epoch + 1, self.name, value)


class EpochProgress(tf.keras.callbacks.Callback):
    """One progress line per epoch (models/progress.py): loss and the eval recall, if any."""

    def __init__(self, epochs: int, label: str):
        super().__init__()
        self._epochs, self._label, self._start = epochs, label, time.time()

    def on_epoch_end(self, epoch, logs=None):
        figures = ", ".join(f"{key} {value:.4f}" for key, value in (logs or {}).items())
        progress("retrieval (%s) epoch %d/%d: %s (%.0f s)", self._label, epoch + 1, self._epochs,
                 figures, time.time() - self._start)


def _steps(examples: int, batch_size: int):
    """(batches an epoch, the last one shorter; batches a call of the train function): Keras
    needs the count to run several a call."""
    steps = -(-examples // batch_size)
    return steps, max(1, min(STEPS_PER_CALL, steps))


def _fit(config: RetrievalConfig, sizes: Dict[str, int], tft_output, files, epochs: int,
         eval_files=None, warm_dir=None):
    """Trains a two-tower model on ``files`` for at most ``epochs``.

    With ``eval_files``, Recall@k of the eval split is computed after every
    epoch and training stops early (the best epoch's weights restored). With
    ``warm_dir``, a served model's state (models/retrieval/warm.py), the model
    starts from its weights, rows carried over by token, and early stopping
    waits ``config.warm_start_patience`` epochs; the warm weights themselves
    count as epoch 0, kept when no epoch beats them.

    Returns:
      (model, TrainingData of ``files``, Keras history, the RecallCallback or
      None, what the warm start did: {} for a cold start without a served state).
    """
    tf.keras.utils.set_random_seed(config.seed)
    train = _dataset(files, tft_output, config.batch_size, config.seed, shuffle=True)
    data = scan_training(_dataset(files, tft_output, 8192, 0, False), sizes[features.ITEM_VOCAB])
    # The in-batch sampling probability of each item, for the logQ correction.
    probability = (np.maximum(data.counts, 1.0) / data.counts.sum()).astype(np.float32)
    trained_users = np.zeros(sizes[features.USER_VOCAB] + 1, bool)
    trained_users[list(data.seen)] = True
    warm = warm_start.plan(warm_dir, tft_output) if warm_dir else None
    started: Dict[str, object] = {}
    if warm_dir and warm is None:
        started = {"warm": False, "reason": f"no retrieval state in {warm_dir}"}

    def build(carried):
        users, items = trained_users, data.counts > 0
        if carried is not None:
            # Rows that start from a trained served row are known ids, not out-of-vocabulary.
            users = users | carried.carried[features.USER_VOCAB]
            items = items | carried.carried[features.ITEM_VOCAB]
        with devices.strategy().scope():
            model = TwoTowerModel(sizes, probability, data.item_table, config, users, items)
            model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate),
                          steps_per_execution=per_call)
            if carried is not None:  # the towers' variables, created by one call each
                model.query_tower(next(iter(_dataset(files, tft_output, 2, 0, False))))
                model.candidate_tower({k: v[:2] for k, v in data.item_table.items()})
        return model

    steps, per_call = _steps(int(data.counts.sum()), config.batch_size)
    model = build(warm)
    if warm is not None:
        reason = warm_start.mismatch(warm, model)
        if reason is None:
            warm_start.apply(warm, model)
            started = {"warm": True, "from": warm_dir, "vocabularies": warm.counts}
        else:
            logging.warning("Retrieval: cold start: %s", reason)
            started = {"warm": False, "reason": reason}
            warm = None
            model = build(None)
    callbacks, recall = [], None
    before = None
    if eval_files is not None:
        eval_users = scan_eval(_dataset(eval_files, tft_output, 8192, 0, False), data.seen,
                               config.early_stopping_users, config.seed)
        recall = RecallCallback(eval_users, data.item_table, config.early_stopping_k)
        patience = config.early_stopping_patience
        if warm is not None:
            measured = time.time()
            before = recall_at_k(model, eval_users, data.item_table, config.early_stopping_k)
            recall.seconds += time.time() - measured
            started["recall_before_training"] = before
            patience = config.warm_start_patience
        callbacks = [recall, tf.keras.callbacks.EarlyStopping(
            monitor=recall.name, mode="max", patience=patience, restore_best_weights=True)]
    callbacks.append(EpochProgress(epochs, "eval" if eval_files is not None else "refit"))
    if epochs == 0:
        # Nothing learned: the initial towers (what the push gates must refuse), or the warm ones.
        return model, data, types.SimpleNamespace(history={"loss": []}), recall, started
    warm_weights = model.get_weights() if before is not None else None
    if per_call > 1:  # the same batches each epoch, reshuffled: each pass of the repeat is one
        history = model.fit(train.repeat(), epochs=epochs, steps_per_epoch=steps,
                            callbacks=callbacks, verbose=0)
    else:
        history = model.fit(train, epochs=epochs, callbacks=callbacks, verbose=0)
    if warm_weights is not None and max(history.history.get(recall.name) or [-1.0]) <= before:
        # No epoch beat the served weights on the eval split: they are this run's model.
        model.set_weights(warm_weights)
        started["kept_served_weights"] = True
    return model, data, history, recall, started


def run_fn(fn_args: FnArgs) -> None:
    """Trains the two-tower model and exports its embedding signatures.

    The holdout model learns from the train split and early-stops on the eval
    split's Recall@k. With ``config.refit``, a second model then learns from
    train + eval for the holdout's best number of epochs: it is the exported
    model (``Format-Serving``, what is pushed), and the holdout model is
    exported beside it (``models/holdout.py``) for the held-out checks
    downstream. custom_config is ``dataclasses.asdict(RetrievalConfig)``. Writes
    ``training.json`` (losses, eval recall per epoch, best epoch, examples/s,
    devices, the refit, the config) next to the model.
    """
    config = decode(RetrievalConfig, fn_args.custom_config)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    sizes = {name: tft_output.vocabulary_size_by_name(name) for name in features.VOCABS}
    device_names = [d.name for d in tf.config.list_logical_devices()]
    logging.info("Training retrieval on %s: %s", device_names, config)
    # The served model's states (components/served: its warm_start output), when one is served.
    served = fn_args.base_model if config.warm_start else None
    start = time.time()
    model, data, history, recall, started = _fit(
        config, sizes, tft_output, fn_args.train_files, config.epochs, fn_args.eval_files,
        os.path.join(served, warm_states.HOLDOUT) if served else None)
    seconds = max(time.time() - start - recall.seconds, 0.0)
    epochs_run = len(history.history["loss"])
    examples = int(data.counts.sum())
    recalls = [float(v) for v in history.history.get(recall.name, [])]
    best_epoch = int(np.argmax(recalls)) + 1 if recalls else epochs_run
    if started.get("kept_served_weights"):
        best_epoch = 0
    if not started:
        started = {"warm": False, "reason": "--cold (retrieval.warm_start is off)" if not config.warm_start
                   else "no served model to start from"}
    summary = {
        "loss": [float(v) for v in history.history["loss"]],
        recall.name: recalls,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "eval_users": recall.users,
        "train_examples": examples,
        "train_seconds": seconds,
        "eval_seconds": recall.seconds,
        "examples_per_second": examples * epochs_run / max(seconds, 1e-9),
        # Optimiser steps taken and batches a call of the train function (STEPS_PER_CALL).
        "steps": int(model.optimizer.iterations.numpy()),
        "steps_per_call": _steps(examples, config.batch_size)[1],
        "devices": device_names,
        "refit": None,
        "warm_start": {"holdout": started},
        "config": dataclasses.asdict(config),
    }
    states = warm_states.beside(fn_args.serving_model_dir)
    deployed_state = os.path.join(served, warm_states.DEPLOYED) if served else None
    warm = bool(started.get("warm")) and tf.io.gfile.exists(os.path.join(deployed_state, warm_start.STATE))
    # A warm start's deployed model learns from the eval split for at least one epoch, even when
    # the served weights won on it: the eval split holds the newest interactions.
    refit_epochs = max(best_epoch, 1) if warm else best_epoch
    if config.refit and refit_epochs > 0:
        export.save(model, tft_output, holdout.holdout_dir(fn_args.serving_model_dir))
        warm_start.save(model, tft_output, os.path.join(states, warm_states.HOLDOUT))
        start = time.time()
        all_files = list(records.expand(fn_args.train_files)) + list(records.expand(fn_args.eval_files))
        model, data, history, _, refit_started = _fit(
            config, sizes, tft_output, all_files, refit_epochs,
            warm_dir=deployed_state if warm else None)
        summary["warm_start"]["deployed"] = refit_started
        summary["refit"] = {"epochs": refit_epochs, "train_examples": int(data.counts.sum()),
                            "train_seconds": time.time() - start,
                            "loss": [float(v) for v in history.history["loss"]]}
    logging.info("Retrieval training: %s", summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    export.save(model, tft_output, fn_args.serving_model_dir)  # builds an untrained model's towers
    if not (config.refit and refit_epochs > 0):  # the deployed model is its own twin
        warm_start.save(model, tft_output, os.path.join(states, warm_states.HOLDOUT))
    warm_start.save(model, tft_output, os.path.join(states, warm_states.DEPLOYED))
    # The served rankers start this run's rankers only where this model started from the served
    # one (a ranker reads these embeddings): their states go on with this model's.
    _hand_on_ranker(served, states, warm_states.HOLDOUT, started)
    _hand_on_ranker(served, states, warm_states.DEPLOYED, summary["warm_start"].get("deployed") or {})


def _hand_on_ranker(served: Optional[str], states: str, which: str, started: Dict[str, object]) -> None:
    """Copies the served ``which`` ranker's state beside this run's ``which`` retrieval state
    when that retrieval model started warm from the served one."""
    source = os.path.join(served or "", which, warm_states.RANKER)
    if started.get("warm") and served and tf.io.gfile.exists(source):
        tf.io.gfile.copy(source, os.path.join(states, which, warm_states.SERVED_RANKER), overwrite=True)
