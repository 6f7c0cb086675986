"""The stock Evaluator's examples: one per (request, candidate) of the servable's own retrieved lists.

TFMA scores one prediction per example, so the ranking stage is judged the way
it works: for each eval user (the request), the candidates the index servable
retrieves for that user, each with ``gain`` 1 when the user interacted with it
in the eval split, else 0. The recommender's ``score_examples`` signature
scores every example by the item's place in that user's final list, so TFMA's
NDCG@K (``query_key`` = the request) is the NDCG of the served ordering of the
retrieved candidates, and AUC tells how well held-out candidates are put above
the others. The examples carry what the slices read, all of them the request's (the
user's): gender, age band, occupation and activity band (training interactions).
TFMA evaluates every metric per request (models/evaluation/tfma_gate.py), so a slice
holds whole requests; an item's attribute would put a request in the slice of every
genre its 50 candidates have.
"""

from __future__ import annotations

import collections
from typing import Dict, Iterable, List, Mapping, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from models import arrays, features, records
from models.evaluation import metrics
from models.index.contract import Retrieved

REQUEST = "request"  # the query key: one request per eval user
GAIN = "gain"  # label of AUC and gain of NDCG: 1.0 for a held-out interaction
AGE_BAND = "age_band"
ACTIVITY = "activity"
# Slices of the stock Evaluator: the user's demographics and how much they interacted.
SLICES = ((features.GENDER,), (AGE_BAND,), (features.OCCUPATION,), (ACTIVITY,))

_AGE_BANDS = ((1, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"),
              (55, "55+"))
# Bands of a user's training interactions (MovieLens's releases keep users with 20 or more).
_ACTIVITY_BANDS = ((0, "under 20"), (20, "20-49"), (50, "50-99"), (100, "100-199"), (200, "200+"))


def age_band(age: int) -> str:
    """The band of an age in years (MovieLens 1M's age codes fall in the same bands); 0: unknown."""
    if age <= 0:
        return "unknown"
    band = "unknown"
    for start, name in _AGE_BANDS:
        if age >= start:
            band = name
    return band


def activity_band(interactions: int) -> str:
    """The band of a user's count of training interactions."""
    return [name for start, name in _ACTIVITY_BANDS if interactions >= start][-1]


def sample_users(users: Sequence[str], n: int, seed: int = 0) -> List[str]:
    """Up to ``n`` of ``users``: all of them, or a seeded sample, sorted."""
    users = sorted(users)
    if len(users) <= n:
        return users
    return sorted(np.random.default_rng(seed).choice(users, n, replace=False).tolist())


def _example(request: str, item: str, gain: float, user: Mapping[str, str]) -> bytes:
    text = records.bytes_feature
    feature = {
        REQUEST: text(request), features.USER_ID: text(request), features.ITEM_ID: text(item),
        GAIN: records.float_feature(gain),
        features.GENDER: text(user.get(features.GENDER) or "unknown"),
        AGE_BAND: text(user.get(AGE_BAND, "unknown")),
        features.OCCUPATION: text(user.get(features.OCCUPATION) or "unknown"),
        ACTIVITY: text(user.get(ACTIVITY, activity_band(0))),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _users(held: Mapping[str, np.ndarray]) -> Dict[str, Dict[str, str]]:
    """Each eval user's demographics, from their latest eval row."""
    out: Dict[str, Dict[str, str]] = {}
    order = np.argsort(held[features.TIMESTAMP], kind="stable")
    for row in order:
        out[held[features.USER_ID][row]] = {
            features.GENDER: str(held[features.GENDER][row]),
            features.OCCUPATION: str(held[features.OCCUPATION][row]),
            AGE_BAND: age_band(int(held[features.AGE][row]))}
    return out


def item_genres(catalogue_files: Sequence[str]) -> Dict[str, Set[str]]:
    """{item: its genres} of the catalogue examples."""
    catalogue = records.read_columns(catalogue_files, {
        features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
        features.GENRES: tf.io.VarLenFeature(tf.string)})
    return {item: {g for g in row if g}
            for item, row in zip(catalogue[features.ITEM_ID], catalogue[features.GENRES])}


def build(model_dir: str, train_files: Sequence[str], eval_files: Sequence[str],
          requests: int, per_request: int, batch_size: int = 256) -> Tuple[List[bytes], Dict[str, int]]:
    """The (request, candidate) examples of a recommender SavedModel on the eval split.

    Args:
      model_dir: the recommender whose index retrieves the candidates (the holdout
        twin: it has not seen the eval split).
      train_files, eval_files: raw interaction examples.
      requests: at most this many eval users (a seeded sample).
      per_request: the first this many retrieved candidates of each list.
      batch_size: users per call of the index.

    Returns:
      (serialized tf.Examples, counts: requests, examples, positives,
      requests_with_positive).
    """
    spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
            features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
            features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
            features.AGE: tf.io.FixedLenFeature([], tf.int64, default_value=0),
            features.GENDER: tf.io.FixedLenFeature([], tf.string, default_value=""),
            features.OCCUPATION: tf.io.FixedLenFeature([], tf.string, default_value="")}
    held = records.read_columns(eval_files, spec)
    held_out = metrics.group_by_user(held[features.USER_ID], held[features.ITEM_ID])
    users = sample_users(list(held_out), requests)
    demographics = _users(held)
    activity = collections.Counter(records.read_columns(
        train_files, {features.USER_ID: tf.io.FixedLenFeature([], tf.string)})[features.USER_ID])
    for user, values in demographics.items():
        values[ACTIVITY] = activity_band(activity.get(user, 0))
    index = tf.saved_model.load(model_dir).index
    item_ids = arrays.to_str(index.item_ids.numpy())
    tally = {"requests": 0, "examples": 0, "positives": 0, "requests_with_positive": 0}
    out: List[bytes] = []
    for start in range(0, len(users), batch_size):
        chunk = users[start:start + batch_size]
        found = Retrieved.of(index.retrieve_positions(tf.constant(chunk)))
        positions = found.positions.numpy()[:, :per_request]
        finite = np.isfinite(found.scores.numpy()[:, :per_request])
        for user, row, keep in zip(chunk, positions, finite):
            items = [item_ids[p] for p in row[keep]]
            gains = [float(item in held_out[user]) for item in items]
            tally["requests"] += 1
            tally["examples"] += len(items)
            tally["positives"] += int(sum(gains))
            tally["requests_with_positive"] += int(any(gains))
            out.extend(_example(user, item, gain, demographics.get(user, {}))
                       for item, gain in zip(items, gains))
    return out, tally


def write(examples: Iterable[bytes], path: str) -> None:
    """Writes serialized examples as one GZIP TFRecord file (ExampleGen's format)."""
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for example in examples:
            writer.write(example)
