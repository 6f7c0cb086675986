"""Pure logic of the index builder: embed the catalogue, gather the users, build, check.

Plain arguments (file lists, paths, a config, a Beam pipeline factory) in, a
SavedModel and a dict of figures out: testable without TFX or ML Metadata.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models import arrays, features, records
from models.index import embed, evaluation, searcher, servable
from models.retrieval.export import CANDIDATE_SIGNATURE

_USER_SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.AGE: tf.io.FixedLenFeature([], tf.int64),
    features.GENDER: tf.io.FixedLenFeature([], tf.string),
    features.OCCUPATION: tf.io.FixedLenFeature([], tf.string),
}
# Index search latency is measured on this many of the evaluation queries.
LATENCY_QUERIES = 200


def training_users(files: Sequence[str], position: Dict[str, int]) -> servable.Users:
    """Users of the interactions in ``files``: features, latest history, last time, items seen.

    Args:
      files: raw interactions (every split for the deployed servable, the train split
        for its holdout twin).
      position: catalogue position of each item id (items outside the
        catalogue are kept in the history but cannot be excluded).
    """
    columns = records.read_columns(files, _USER_SPEC)
    users = columns[features.USER_ID]
    groups = arrays.runs(users, np.lexsort((columns[features.ITEM_ID], columns[features.TIMESTAMP], users)))
    first = np.array([g[0] for g in groups], dtype=np.int64)
    histories = np.full((len(groups), features.MAX_HISTORY), "", dtype=object)
    splits, flat = [0], []
    for row, group in enumerate(groups):
        items = columns[features.ITEM_ID][group]
        latest = items[-features.MAX_HISTORY:]
        histories[row, : len(latest)] = latest
        flat.extend(sorted({position[i] for i in items if i in position}))
        splits.append(len(flat))
    last = np.array([columns[features.TIMESTAMP][g[-1]] for g in groups], dtype=np.int64)
    return servable.Users(
        ids=users[first], ages=columns[features.AGE][first], genders=columns[features.GENDER][first],
        occupations=columns[features.OCCUPATION][first], histories=histories, last_seen=last,
        seen_row_splits=np.array(splits, np.int64), seen_items=np.array(flat, np.int32))


def new_items(item_ids: np.ndarray, transform_dir: Optional[str]) -> int:
    """Catalogue items outside the Transform graph's item vocabulary (no training
    interactions): the candidate tower places them by their features alone."""
    if not transform_dir:
        return 0
    vocabulary = tft.TFTransformOutput(transform_dir).vocabulary_by_name(features.ITEM_VOCAB)
    known = {v.decode("utf-8") if isinstance(v, bytes) else v for v in vocabulary}
    return int(sum(1 for i in item_ids if i not in known))


def _bytes(files) -> int:
    return sum(tf.io.gfile.stat(f).length for f in files)


def _bytes_under(path: str) -> int:
    return _bytes(os.path.join(root, name) for root, _, names in tf.io.gfile.walk(path)
                  for name in names)


def sample_queries(index: servable.RetrievalIndex, user_ids: np.ndarray, n: int,
                   seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Query embeddings of two disjoint samples of training users: (tuning, evaluation).

    Up to ``n`` users each; with fewer than 2n users, half each.
    """
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(user_ids)[: 2 * n]
    half = min(n, len(chosen) // 2)
    vectors = np.vstack([index.embed_users(tf.constant(chosen[s:s + 1024])).numpy()
                         for s in range(0, len(chosen), 1024)])
    return vectors[:half], vectors[half:]


def evaluate_index(index: servable.RetrievalIndex, item_vectors: np.ndarray,
                   queries: np.ndarray, config) -> Dict[str, object]:
    """The index against exact search: Recall@10 and @candidates, latency, the blessing."""
    metrics = evaluation.evaluate(index.searcher.search, item_vectors, queries,
                                  (10, index.candidates), latency_queries=LATENCY_QUERIES)
    # index.candidates is already capped at the catalogue size, as are the recall cutoffs.
    gate = f"recall@{index.candidates}"
    return {**metrics, **evaluation.bless(metrics, gate, config.min_recall)}


def request_latency(export_dir: str, user_ids: np.ndarray, n: int = 100) -> Dict[str, float]:
    """Percentiles (ms) of one-user ``retrieve`` requests to the saved servable, reloaded."""
    retrieve = tf.saved_model.load(export_dir).signatures["retrieve"]
    users = [tf.constant(user_ids[i:i + 1]) for i in range(min(n, len(user_ids)))]
    latency = evaluation.latency_ms(lambda user: retrieve(user_id=user)["item_ids"].numpy(), users)
    return {f"request_ms_{p}": v for p, v in latency.items()}


def _embedded(model, model_dir: str, catalogue_files: Sequence[str], work_dir: str, config,
              make_pipeline: Callable[[], beam.Pipeline]):
    """(item ids, titles, embeddings float32 [n, d]) of the catalogue: embedded by ``model``
    (loaded from ``model_dir``) in this process below ``config.embed_in_process_bytes`` of
    catalogue files, on Beam from there on."""
    size = _bytes(catalogue_files)
    if size < config.embed_in_process_bytes:
        pattern = embed.embed_in_process(model.signatures[CANDIDATE_SIGNATURE], catalogue_files,
                                         work_dir, config.batch_size)
    else:
        logging.info("Embedding %d bytes of catalogue on Beam", size)
        with make_pipeline() as pipeline:
            pattern = embed.embed_catalogue(pipeline, model_dir, catalogue_files, work_dir,
                                            config.batch_size)
    return embed.read_embeddings(pattern)


def _index(model, embedded, interaction_files: Sequence[str], config,
           settings: Optional[searcher.Settings] = None):
    """The servable of ``model`` (the loaded retrieval SavedModel) over ``embedded`` items for
    the users of ``interaction_files``; ``settings`` None: resolved for the catalogue.
    Returns (index, users)."""
    item_ids, titles, item_vectors = embedded
    position = {item: p for p, item in enumerate(item_ids)}
    users = training_users(interaction_files, position)
    popularity = np.bincount(users.seen_items, minlength=len(item_ids)).astype(np.float32)
    if settings is None:
        settings = searcher.resolve(config, len(item_ids),
                                    servable.search_depth(config.candidates, users, len(item_ids)))
        logging.info("Index settings for %d items: %s", len(item_ids), settings.describe())
    index = servable.RetrievalIndex(item_ids, item_vectors, titles, popularity, users, model,
                                    config.candidates, settings)
    return index, users


def build_index(
    model_dir: str, catalogue_files: Sequence[str], interaction_files: Sequence[str], export_dir: str,
    config, work_dir: str, transform_dir: Optional[str] = None,
    make_pipeline: Callable[[], beam.Pipeline] = beam.Pipeline,
    holdout: Optional[Tuple[str, Sequence[str], str]] = None,
) -> Dict[str, object]:
    """Builds, saves and evaluates the retrieval servable (and its holdout twin).

    Args:
      model_dir: the retrieval model's SavedModel (query/candidate signatures).
      catalogue_files: raw catalogue examples.
      interaction_files: raw interactions the servable knows (users, their
        histories and exclusions, popularity): every split, for the model that
        is deployed.
      export_dir: where the servable is written.
      config: an IndexConfig.
      work_dir: where the catalogue's embeddings are written (kept: they are
        the input of any later rebuild or analysis).
      transform_dir: the Transform graph (to count items without interactions).
      make_pipeline: Beam pipeline factory (the executor's carries the
        pipeline's Beam arguments).
      holdout: (holdout retrieval model dir, train-split files, export dir):
        also writes the servable the held-out checks score, which knows only
        the train split, with the deployed index's search settings.

    Returns:
      Figures of the build and of the index evaluation, and the blessing
      ('blessed', 'reason').
    """
    start = time.time()
    model = tf.saved_model.load(model_dir)
    embedded = _embedded(model, model_dir, catalogue_files, work_dir, config, make_pipeline)
    item_ids, _, item_vectors = embedded
    embed_seconds = time.time() - start
    built = time.time()
    index, users = _index(model, embedded, interaction_files, config)
    settings = index.settings
    build_seconds = time.time() - built
    tuning, queries = sample_queries(index, users.ids, config.eval_queries)
    settings, chosen = evaluation.tune(index.searcher, settings, item_vectors, tuning,
                                       index.candidates, config.min_recall)
    tuned = {"tuning_queries": len(tuning), "tuning_recall": chosen["tuning_recall"]} if chosen else {}
    if chosen:
        logging.info("Search breadth tuned on %d queries: %s", len(tuning), chosen)
    servable.save(index, export_dir)
    if holdout is not None:
        holdout_dir, train_files, holdout_export = holdout
        if holdout_dir != model_dir:
            model = tf.saved_model.load(holdout_dir)
            embedded = _embedded(model, holdout_dir, catalogue_files, os.path.join(work_dir, "holdout"),
                                 config, make_pipeline)
        servable.save(_index(model, embedded, train_files, config, settings)[0], holdout_export)
    figures: Dict[str, object] = {
        "items": len(item_ids), "new_items": new_items(item_ids, transform_dir),
        "users": len(users.ids), "embedding_dim": int(item_vectors.shape[1]),
        "flavour": settings.flavour, "settings": settings.describe(),
        "embed_seconds": round(embed_seconds, 2), "build_seconds": round(build_seconds, 2),
        "index_bytes": index.searcher.size_bytes(), "servable_bytes": _bytes_under(export_dir),
        **tuned,
    }
    figures.update(evaluate_index(index, item_vectors, queries, config))
    figures.update(request_latency(export_dir, users.ids))
    figures["total_seconds"] = round(time.time() - start, 2)
    return figures
