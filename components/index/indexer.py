"""Pure logic of the index builder: embed the catalogue, gather the users, build the index.

Plain arguments (file lists, paths, a config) in, a SavedModel and a dict of
figures out: testable without TFX or ML Metadata.
"""

from __future__ import annotations

import time
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from components import arrays, io
from components import features as F
from components.index import servable
from components.retrieval.export import CANDIDATE_SIGNATURE

_ITEM_SPEC = {
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    F.TITLE: tf.io.FixedLenFeature([], tf.string),
    F.GENRES: tf.io.VarLenFeature(tf.string),
    F.YEAR: tf.io.FixedLenFeature([], tf.int64),
}
_USER_SPEC = {
    F.USER_ID: tf.io.FixedLenFeature([], tf.string),
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    F.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    F.AGE: tf.io.FixedLenFeature([], tf.int64),
    F.GENDER: tf.io.FixedLenFeature([], tf.string),
    F.OCCUPATION: tf.io.FixedLenFeature([], tf.string),
}


def choose_flavour(flavour: str, num_items: int, brute_force_below: int) -> str:
    """'auto' -> exact below ``brute_force_below`` items (ScaNN's guidance), else scann."""
    if flavour != "auto":
        return flavour
    return servable.EXACT if num_items < brute_force_below else servable.SCANN


def embed_catalogue(model, files: Sequence[str], batch_size: int):
    """Embeds every catalogue item in batches.

    Returns:
      (item_ids [n] str, titles [n] str, embeddings float32 [n, dim]).
    """
    embed = model.signatures[CANDIDATE_SIGNATURE]
    ids, titles, vectors = [], [], []
    for batch in io.batches(files, _ITEM_SPEC, batch_size):
        out = embed(item_id=tf.constant(batch[F.ITEM_ID]), title=tf.constant(batch[F.TITLE]),
                    genres=tf.constant(batch[F.GENRES]), year=tf.constant(batch[F.YEAR]))
        ids.append(batch[F.ITEM_ID].astype(str))
        titles.append(batch[F.TITLE])
        vectors.append(out["embedding"].numpy())
    titles = np.concatenate(titles)
    return np.concatenate(ids), np.array([t.decode("utf-8") for t in titles]), np.vstack(vectors)


def training_users(files: Sequence[str], position: Dict[str, int]) -> servable.Users:
    """Users of the training split: features, latest history, last time, items seen.

    Args:
      files: raw training interactions.
      position: catalogue position of each item id (items outside the
        catalogue are kept in the history but cannot be excluded).
    """
    columns = io.read_columns(files, _USER_SPEC)
    users = columns[F.USER_ID]
    groups = arrays.runs(users, np.lexsort((np.arange(len(users)), columns[F.TIMESTAMP], users)))
    first = np.array([g[0] for g in groups], dtype=np.int64)
    histories = np.full((len(groups), F.MAX_HISTORY), "", dtype=object)
    splits, flat = [0], []
    for row, group in enumerate(groups):
        items = columns[F.ITEM_ID][group]
        latest = items[-F.MAX_HISTORY:]
        histories[row, : len(latest)] = latest
        flat.extend(sorted({position[i] for i in items if i in position}))
        splits.append(len(flat))
    last = np.array([columns[F.TIMESTAMP][g[-1]] for g in groups], dtype=np.int64)
    return servable.Users(
        ids=users[first], ages=columns[F.AGE][first], genders=columns[F.GENDER][first],
        occupations=columns[F.OCCUPATION][first], histories=histories, last_seen=last,
        seen_row_splits=np.array(splits, np.int64), seen_items=np.array(flat, np.int32))


def build_index(
    model_dir: str, catalogue_files: Sequence[str], train_files: Sequence[str], export_dir: str,
    config,
) -> Dict[str, object]:
    """Builds and saves the retrieval servable.

    Args:
      model_dir: the retrieval model's SavedModel (query/candidate signatures).
      catalogue_files: raw catalogue examples.
      train_files: raw training interactions (users, exclusions, popularity).
      export_dir: where the servable is written.
      config: an IndexConfig.

    Returns:
      Figures of the build: items, users, flavour, build seconds.
    """
    start = time.time()
    model = tf.saved_model.load(model_dir)
    item_ids, titles, item_vectors = embed_catalogue(model, catalogue_files, config.batch_size)
    position = {item: p for p, item in enumerate(item_ids)}
    users = training_users(train_files, position)
    popularity = np.bincount(users.seen_items, minlength=len(item_ids)).astype(np.float32)
    flavour = choose_flavour(config.flavour, len(item_ids), config.brute_force_below)
    index = servable.RetrievalIndex(
        item_ids, item_vectors, titles, popularity, users, model, config.candidates, flavour,
        config.num_leaves, config.num_leaves_to_search)
    servable.save(index, export_dir)
    return {"items": len(item_ids), "users": len(users.ids), "flavour": flavour,
            "build_seconds": round(time.time() - start, 2)}
