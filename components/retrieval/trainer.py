"""Trainer user code of the two-tower retrieval model (``run_fn``)."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from components import features as F
from components import io
from components.retrieval import export
from components.retrieval.model import TwoTowerModel
from pipeline.config import RetrievalConfig, from_dict

_VOCABS = (F.USER_VOCAB, F.ITEM_VOCAB, F.GENDER_VOCAB, F.OCCUPATION_VOCAB, F.GENRE_VOCAB,
           F.TITLE_VOCAB)


def _dataset(files, tft_output, batch_size: int, seed: int, shuffle: bool) -> tf.data.Dataset:
    spec = tft_output.transformed_feature_spec()
    ds = tf.data.TFRecordDataset(io.expand(files), compression_type="GZIP")
    if shuffle:
        ds = ds.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    return (ds.batch(batch_size)
            .map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def _item_counts(dataset: tf.data.Dataset, vocab_size: int) -> np.ndarray:
    """Training interactions per item index: float64 [vocab_size + 1]."""
    counts = np.zeros(vocab_size + 1, dtype=np.float64)
    for batch in dataset:
        counts += np.bincount(batch[F.ITEM_IDX].numpy(), minlength=vocab_size + 1)
    return counts


def run_fn(fn_args: FnArgs) -> None:
    """Trains the two-tower model and exports its embedding signatures.

    custom_config is ``dataclasses.asdict(RetrievalConfig)``.
    """
    config = from_dict(RetrievalConfig, fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    sizes = {name: tft_output.vocabulary_size_by_name(name) for name in _VOCABS}
    train = _dataset(fn_args.train_files, tft_output, config.batch_size, config.seed, shuffle=True)
    evaluation = _dataset(fn_args.eval_files, tft_output, config.batch_size, config.seed, shuffle=False)
    counts = _item_counts(_dataset(fn_args.train_files, tft_output, 8192, 0, False),
                          sizes[F.ITEM_VOCAB])
    # The in-batch sampling probability of each item, for the logQ correction.
    probability = (np.maximum(counts, 1.0) / counts.sum()).astype(np.float32)
    model = TwoTowerModel(sizes, probability, config)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    logging.info("Training retrieval on %s: %s", tf.config.list_logical_devices(), config)
    start = time.time()
    history = model.fit(train, epochs=config.epochs, validation_data=evaluation, verbose=2)
    seconds = time.time() - start
    examples = int(counts.sum())
    summary = {
        "loss": [float(v) for v in history.history["loss"]],
        "val_loss": [float(v) for v in history.history.get("val_loss", [])],
        "train_seconds": seconds,
        "examples_per_second": examples * config.epochs / max(seconds, 1e-9),
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "config": config.__dict__,
    }
    logging.info("Retrieval training: %s", summary)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    export.save(model, tft_output, fn_args.serving_model_dir)
