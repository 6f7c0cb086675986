"""Pure logic of the index builder: embed the catalogue and users, build the index.

Plain arguments (file lists, paths, a config) in, a SavedModel and a dict of
figures out: testable without TFX or ML Metadata.
"""

from __future__ import annotations

import time
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from components import features as F
from components import io
from components.index import servable
from components.retrieval.export import CANDIDATE_SIGNATURE, QUERY_SIGNATURE

_ITEM_SPEC = {
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    F.TITLE: tf.io.FixedLenFeature([], tf.string),
    F.GENRES: tf.io.VarLenFeature(tf.string),
    F.YEAR: tf.io.FixedLenFeature([], tf.int64),
}
_USER_SPEC = {
    F.USER_ID: tf.io.FixedLenFeature([], tf.string),
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
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


def _training_users(files: Sequence[str]):
    """Users of the training split with their features and interacted items."""
    features: Dict[str, tuple] = {}
    seen: Dict[str, list] = {}
    for batch in io.batches(files, _USER_SPEC):
        for user, item, age, gender, occ in zip(batch[F.USER_ID], batch[F.ITEM_ID], batch[F.AGE],
                                                batch[F.GENDER], batch[F.OCCUPATION]):
            user = user.decode("utf-8")
            features.setdefault(user, (age, gender, occ))
            seen.setdefault(user, []).append(item.decode("utf-8"))
    return features, seen


def embed_users(model, features: Dict[str, tuple], batch_size: int):
    """Query embeddings of known users: (user_ids [u] str, float32 [u, dim])."""
    embed = model.signatures[QUERY_SIGNATURE]
    user_ids = sorted(features)
    vectors = []
    for start in range(0, len(user_ids), batch_size):
        chunk = user_ids[start:start + batch_size]
        age, gender, occ = zip(*(features[u] for u in chunk))
        out = embed(user_id=tf.constant(chunk), age=tf.constant(np.array(age, np.int64)),
                    gender=tf.constant(list(gender)), occupation=tf.constant(list(occ)))
        vectors.append(out["embedding"].numpy())
    dim = vectors[0].shape[1] if vectors else 0
    return np.array(user_ids), (np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32))


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
    features, seen = _training_users(train_files)
    user_ids, user_vectors = embed_users(model, features, config.batch_size)
    popularity = np.zeros(len(item_ids), np.float32)
    row_splits, flat = [0], []
    for user in user_ids:
        known = [position[i] for i in seen[user] if i in position]
        np.add.at(popularity, known, 1)
        flat.extend(sorted(set(known)))
        row_splits.append(len(flat))
    flavour = choose_flavour(config.flavour, len(item_ids), config.brute_force_below)
    index = servable.RetrievalIndex(
        item_ids, item_vectors, titles, popularity, user_ids, user_vectors,
        np.array(row_splits, np.int64), np.array(flat, np.int32), config.candidates, flavour,
        config.num_leaves, config.num_leaves_to_search)
    servable.save(index, export_dir)
    return {"items": len(item_ids), "users": len(user_ids), "flavour": flavour,
            "build_seconds": round(time.time() - start, 2)}
