"""Candidate lists the ranker learns from and is checked on (numpy, no TFX).

Training lists replay serving inside the training split. Each user's training
timeline is cut at a few anchors; at an anchor the query is what the
retrieval servable would have computed then (the user's features, the
history before the anchor, the time of the last interaction before it), the
candidates are the top retrieved items with everything before the anchor
excluded (hard negatives: items retrieval ranks high), and the labels are
the items of the window after the anchor, as the evaluation split is the
window after the training data. Evaluation lists are the servable's own
retrieval answers for held-out users, labelled by the eval split.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from models import arrays, features, records

SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.RATING: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    features.AGE: tf.io.FixedLenFeature([], tf.int64),
    features.GENDER: tf.io.FixedLenFeature([], tf.string),
    features.OCCUPATION: tf.io.FixedLenFeature([], tf.string),
}


@dataclasses.dataclass
class Interactions:
    """Training interactions grouped per user, each group in time order.

    Attributes:
      columns: SPEC's columns, one value per interaction.
      positions: int64 [n], catalogue positions (-1: outside the catalogue).
      groups: per user, the row indices in time order.
    """

    columns: Dict[str, np.ndarray]
    positions: np.ndarray
    groups: list

    def history(self, rows: np.ndarray) -> np.ndarray:
        """object [len(rows), MAX_HISTORY]: each row's user's items before it, oldest first,
        padded with "" (what the row's example holds as its history feature). Built from the
        grouped timelines for the rows asked for only, so no history is held per interaction."""
        if not hasattr(self, "_place"):
            n = len(self.positions)
            self._group = np.zeros(n, np.int64)
            self._place = np.zeros(n, np.int64)
            for g, group in enumerate(self.groups):
                self._group[group] = g
                self._place[group] = np.arange(len(group))
        items = self.columns[features.ITEM_ID]
        out = np.full((len(rows), features.MAX_HISTORY), "", dtype=object)
        for i, row in enumerate(rows):
            group, place = self.groups[self._group[row]], int(self._place[row])
            latest = items[group[max(0, place - features.MAX_HISTORY):place]]
            out[i, :len(latest)] = latest
        return out


def read(files: Sequence[str], lookup_items) -> Interactions:
    """Reads interactions; ``lookup_items`` maps item ids [n] to positions [n] (-1 unknown)."""
    columns = records.read_columns(files, SPEC)
    positions = np.asarray(lookup_items(columns[features.ITEM_ID]), np.int64)
    users = columns[features.USER_ID]
    order = np.lexsort((columns[features.ITEM_ID], columns[features.TIMESTAMP], users))
    return Interactions(columns, positions, arrays.runs(users, order))


def first_seen(interactions: Interactions, n_items: int) -> np.ndarray:
    """int64 [n_items], each item's first training interaction time; items without
    one get the latest training time (new in the catalogue)."""
    times = interactions.columns[features.TIMESTAMP]
    latest = int(times.max()) if len(times) else 0
    out = np.full(n_items, latest, np.int64)
    known = interactions.positions >= 0
    np.minimum.at(out, interactions.positions[known], times[known])
    return out


class Trend(NamedTuple):
    """Each item's interactions over time, for its popularity just before a given time.

    Attributes:
      cumulative: float32 [n_items, bins + 1], interactions up to the end of each
        time bin (column 0: none).
      start: int64, the first bin's start (seconds); width: int64, seconds per bin;
      window: int32, bins counted back from a time (TREND_DAYS).
    """

    cumulative: np.ndarray
    start: np.ndarray
    width: np.ndarray
    window: np.ndarray


# Popularity "now" counts the interactions of this many days before the request's time.
TREND_DAYS = 30
_TREND_CELLS = 2 ** 24  # at most this many counts (items x bins): coarser bins for big catalogues


def trend(interactions: Interactions, n_items: int, days: int = TREND_DAYS) -> Trend:
    """Daily (coarser when the log is long or the catalogue large) interaction counts per item.

    The window of a request's time ends with the bin that holds it.
    """
    times = interactions.columns[features.TIMESTAMP]
    known = interactions.positions >= 0
    start = int(times.min()) if len(times) else 0
    span = (int(times.max()) - start + 1) if len(times) else 1
    most = max(1, min(1024, _TREND_CELLS // max(n_items, 1)))
    width = max(86400, -(-span // most))
    bins = -(-span // width)
    counts = np.zeros((n_items, bins + 1), np.float32)
    np.add.at(counts, (interactions.positions[known],
                       np.minimum((times[known] - start) // width, bins - 1) + 1), 1.0)
    window = max(1, int(round(days * 86400 / width)))
    return Trend(np.cumsum(counts, axis=1), np.int64(start), np.int64(width), np.int32(window))


def no_trend(n_items: int) -> Trend:
    """No interactions over time (every item's recent popularity is 0)."""
    return Trend(np.zeros((n_items, 2), np.float32), np.int64(0), np.int64(1), np.int32(1))


@dataclasses.dataclass
class Anchors:
    """Where training lists are cut.

    Attributes:
      rows: int64 [L], the interaction each list is anchored at (its query
        reads this row's features and history).
      times: int64 [L], the time of the user's interaction before the anchor.
      excluded: L arrays of positions interacted with before the anchor.
      labels: L arrays of positions interacted with in the window after it.
      own: L arrays of positions of all the user's training interactions.
    """

    rows: np.ndarray
    times: np.ndarray
    excluded: list
    labels: list
    own: list


def anchors(interactions: Interactions, fractions: Sequence[float], window: float,
            min_interactions: int) -> Anchors:
    """Cuts every user with ``min_interactions`` or more at ``fractions`` of their
    timeline; labels are the next ``window`` share (at least one interaction)."""
    times = interactions.columns[features.TIMESTAMP]
    out = Anchors(np.zeros(0, np.int64), np.zeros(0, np.int64), [], [], [])
    rows, anchor_times = [], []
    for group in interactions.groups:
        n = len(group)
        if n < min_interactions:
            continue
        positions = interactions.positions[group]
        own = np.unique(positions[positions >= 0])
        width = max(1, int(round(n * window)))
        for cut in sorted({min(max(int(round(n * f)), 1), n - 1) for f in fractions}):
            labels = positions[cut:cut + width]
            before = positions[:cut]
            rows.append(group[cut])
            anchor_times.append(times[group[cut - 1]])
            out.excluded.append(np.unique(before[before >= 0]))
            out.labels.append(np.unique(labels[labels >= 0]))
            out.own.append(own)
    out.rows = np.asarray(rows, np.int64)
    out.times = np.asarray(anchor_times, np.int64)
    return out


def top_candidates(queries: np.ndarray, item_embeddings: np.ndarray, excluded: Sequence[np.ndarray],
                   k: int, max_scores: int = 2 ** 24):
    """Exact top ``k`` (positions int32 [q, k], scores float32 [q, k]) of each query,
    its excluded positions left out; -inf scores where fewer than k remain."""
    n_items = item_embeddings.shape[0]
    k = min(k, n_items)
    step = max(1, max_scores // max(n_items, 1))
    positions = np.zeros((len(queries), k), np.int32)
    scores = np.zeros((len(queries), k), np.float32)
    for start in range(0, len(queries), step):
        chunk = queries[start:start + step] @ item_embeddings.T
        for i, row in enumerate(excluded[start:start + step]):
            chunk[i, row] = -np.inf
        top = np.argpartition(-chunk, k - 1, axis=1)[:, :k] if k < n_items else \
            np.tile(np.arange(n_items), (len(chunk), 1))
        top_scores = np.take_along_axis(chunk, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        positions[start:start + len(chunk)] = np.take_along_axis(top, order, axis=1)
        scores[start:start + len(chunk)] = np.take_along_axis(top_scores, order, axis=1)
    return positions, scores


def _member(positions: np.ndarray, sets: Sequence[np.ndarray]) -> np.ndarray:
    """bool [L, c]: whether each row's candidate is in that row's set; one ``np.isin`` over
    (row, item) keys instead of one per row (thousands of lists at 100k interactions)."""
    if not len(positions):
        return np.zeros(positions.shape, bool)
    sizes = np.fromiter((len(x) for x in sets), np.int64, len(sets))
    members = np.concatenate([np.asarray(x, np.int64).reshape(-1) for x in sets])
    positions = positions.astype(np.int64)
    low = min(positions.min(initial=0), members.min(initial=0))  # -1 marks an unknown item
    width = max(positions.max(initial=0), members.max(initial=0)) - low + 1
    rows = np.arange(len(positions), dtype=np.int64)
    keys = np.repeat(rows, sizes) * width + (members - low)
    return np.isin(rows[:, None] * width + (positions - low), keys)


def label_matrix(positions: np.ndarray, labels: Sequence[np.ndarray]) -> np.ndarray:
    """float32 [L, c]: 1 where a candidate is among its list's labels."""
    return _member(positions, labels).astype(np.float32)


def other_users_popularity(popularity: np.ndarray, positions: np.ndarray,
                           own: Sequence[np.ndarray]) -> np.ndarray:
    """float32 [L, c]: popularity of the candidates without the list's user's own
    interactions (served lists never hold items the user interacted with, so
    their popularity is always other users')."""
    return popularity[positions].astype(np.float32) - _member(positions, own)
