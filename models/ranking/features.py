"""Features of (user, candidate) pairs, computed in the graph from tables.

One function builds them for training lists and for served requests alike, so
what the ranker learned on is what it scores at serving time. Per pair:
  * the query and item embeddings and their element-wise product (the cross
    network learns user x item interactions a dot product cannot express);
  * the retrieval score, its gap to the list's best and the retrieval rank;
  * item popularity (training interactions, other users') and age: days
    between the item's first training interaction and the request's time,
    signed (negative: first seen after the user was last active), and a
    freshness decay of it;
  * the user's history: the candidate's largest and mean cosine similarity to
    the items of the history, and the history's length;
  * the item's popularity just before the request's time (interactions in the
    30 days before it: what was popular then, not over the whole log);
  * item-to-item neighbours (models/ranking/neighbours.py): the candidate's
    co-interaction similarity summed over the history, its largest, and summed
    over the latest few history items (the latest weigh most).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from models.ranking.neighbours import SHRINK

# Keys of the feature dict.
QUERY, ITEM, SCALARS = "query", "item", "scalars"
SCALAR_NAMES = ("score", "score_gap", "log_rank", "log_popularity", "signed_log_age_days",
                "freshness", "history_max_similarity", "history_mean_similarity",
                "log_history_length", "log_neighbour_sum", "neighbour_max",
                "log_recent_neighbour_sum", "log_recent_popularity")
# Freshness decays with this time constant (days since the item was first seen).
FRESHNESS_DAYS = 30.0
# The latest history items whose neighbour similarity is also summed on its own.
RECENT_ITEMS = 5
SECONDS_PER_DAY = 86400.0


def _unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(x, axis=-1)


def age_days(time: tf.Tensor, first_seen: tf.Tensor) -> tf.Tensor:
    """Days from items' first interaction ([b, c]) to the request's time ([b])."""
    return tf.cast(time[:, None] - first_seen, tf.float32) / SECONDS_PER_DAY


def freshness(days: tf.Tensor) -> tf.Tensor:
    """1 for an item first seen at the request's time, decaying with its age."""
    return tf.exp(-tf.maximum(days, 0.0) / FRESHNESS_DAYS)


def neighbour_similarity(positions, history, neighbours, own=None, recent: int = RECENT_ITEMS,
                         shrink: float = SHRINK):
    """Item-to-item similarity of candidates to a history.

    The similarity of a history item h and a candidate c is the shrunk cosine
    co(h, c) / (sqrt(n_h n_c) + shrink) where c is among h's neighbours, else 0.
    Where ``own`` marks a candidate the list's user interacted with (a training
    list's later items), that user is taken out of co(h, c) and n_c: a served
    candidate is never the user's own, so its counts are other users'.

    Args:
      positions: int [b, c] candidates; history: int [b, h] positions, oldest
        first, -1 padding at the end.
      neighbours: (ids int32 [n_items, m], co-occurrences float32 [n_items, m],
        counts float32 [n_items]) (ranking/neighbours.py).
      own: bool [b, c] or None (none own).
      recent: how many of the latest history items form the recent sum.
      shrink: the cosine's shrinkage.

    Returns:
      (sum over the history [b, c], largest [b, c], sum over the latest
      ``recent`` history items [b, c]) of each candidate's similarity.
    """
    neighbour_ids, cooccurrences, counts = neighbours
    positions = tf.cast(positions, tf.int32)
    valid = history >= 0
    safe = tf.maximum(history, 0)
    ids = tf.gather(neighbour_ids, safe)  # [b, h, m]
    shape = tf.shape(ids)
    batch, length, width = shape[0], shape[1], shape[2]
    candidates = tf.shape(positions)[1]
    match = tf.reshape(tf.equal(positions[:, :, None], tf.reshape(ids, [batch, 1, length * width])),
                       [batch, candidates, length, width])
    co = tf.reduce_sum(tf.where(match, tf.gather(cooccurrences, safe)[:, None], 0.0), axis=3)
    mine = tf.zeros_like(positions, tf.float32) if own is None else tf.cast(own, tf.float32)
    others = tf.maximum(tf.gather(counts, tf.maximum(positions, 0)) - mine, 0.0)  # [b, c]
    norm = tf.sqrt(tf.gather(counts, safe)[:, None, :] * others[:, :, None]) + shrink
    found = tf.reduce_any(match, axis=3) & valid[:, None, :]
    per_history = tf.where(found, tf.maximum(co - mine[:, :, None], 0.0) / norm, 0.0)  # [b, c, h]
    count = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1, keepdims=True)
    place = tf.range(length)[None, :]
    latest = tf.cast(valid & (place >= count - recent), tf.float32)  # [b, h]
    return (tf.reduce_sum(per_history, axis=2), tf.reduce_max(per_history, axis=2),
            tf.reduce_sum(per_history * latest[:, None, :], axis=2))


def recent_popularity(positions, time, trend):
    """Interactions with each candidate in the window before the request's time.

    Args:
      positions: int [b, c]; time: int64 [b].
      trend: (cumulative float32 [n_items, bins + 1], start int64, width int64,
        window int32) (ranking/lists.py ``trend``).

    Returns:
      float32 [b, c].
    """
    cumulative, start, width, window = trend
    bins = tf.shape(cumulative, out_type=tf.int64)[1] - 1
    end = tf.clip_by_value((time - start) // width + 1, 0, bins)  # [b]: columns up to the time
    begin = tf.maximum(end - tf.cast(window, tf.int64), 0)
    items = tf.maximum(tf.cast(positions, tf.int64), 0)

    def upto(column):  # [b] -> [b, c]: interactions of each candidate before that column's end
        columns = tf.broadcast_to(column[:, None], tf.shape(items))
        return tf.gather_nd(cumulative, tf.stack([items, columns], axis=-1))

    return upto(end) - upto(begin)


def list_features(query, item_embeddings, positions, scores, popularity, first_seen, history,
                  time, neighbours, trend, own=None) -> Dict[str, tf.Tensor]:
    """Ranker inputs of candidate lists.

    Args:
      query: float32 [b, d], the retrieval query embeddings.
      item_embeddings: float32 [n_items, d].
      positions: int [b, c], catalogue positions of the candidates, in
        retrieval order (best first).
      scores: float32 [b, c], retrieval scores; -inf for "no candidate".
      popularity: float32 [b, c], the candidates' training interactions by
        other users.
      first_seen: int64 [b, c], time of the candidates' first training
        interaction.
      history: int [b, h], catalogue positions of the user's latest items,
        -1 for padding or items outside the catalogue.
      time: int64 [b], the request's time (the user's last activity).
      neighbours: each item's nearest items by co-interactions and their
        counts (``neighbour_similarity``).
      trend: each item's interactions over time (``recent_popularity``).
      own: bool [b, c], candidates the list's user interacted with (training
        lists only; None: none, as in every served list).

    Returns:
      {QUERY: [b, c, d], ITEM: [b, c, d], SCALARS: [b, c, len(SCALAR_NAMES)]}.
    """
    items = tf.gather(item_embeddings, positions)
    shape = tf.shape(items)
    queries = tf.broadcast_to(query[:, None, :], shape)
    finite = tf.math.is_finite(scores)
    safe_scores = tf.where(finite, scores, 0.0)
    best = tf.reduce_max(tf.where(finite, scores, -np.inf), axis=1, keepdims=True)
    gap = tf.where(finite, safe_scores - tf.where(tf.math.is_finite(best), best, 0.0), 0.0)
    rank = tf.cast(tf.broadcast_to(tf.range(shape[1])[None, :], shape[:2]), tf.float32)

    days = age_days(time, first_seen)
    signed_log_age = tf.sign(days) * tf.math.log1p(tf.abs(days))

    valid = history >= 0
    history_items = _unit(tf.gather(item_embeddings, tf.maximum(history, 0)))
    similarity = tf.einsum("bcd,bhd->bch", _unit(items), history_items)
    mask = tf.broadcast_to(valid[:, None, :], tf.shape(similarity))
    length = tf.reduce_sum(tf.cast(valid, tf.float32), axis=1)
    has_history = (length > 0)[:, None]
    max_similarity = tf.where(has_history, tf.reduce_max(tf.where(mask, similarity, -1.0), axis=2),
                              0.0)
    mean_similarity = (tf.reduce_sum(tf.where(mask, similarity, 0.0), axis=2)
                       / tf.maximum(length, 1.0)[:, None])
    log_length = tf.broadcast_to(tf.math.log1p(length)[:, None], shape[:2])

    neighbour_sum, neighbour_max, recent_sum = neighbour_similarity(positions, history, neighbours,
                                                                    own)

    scalars = tf.stack([safe_scores, gap, tf.math.log1p(rank), tf.math.log1p(popularity),
                        signed_log_age, freshness(days), max_similarity, mean_similarity, log_length,
                        tf.math.log1p(neighbour_sum), neighbour_max, tf.math.log1p(recent_sum),
                        tf.math.log1p(recent_popularity(positions, time, trend))],
                       axis=-1)
    return {QUERY: queries, ITEM: items, SCALARS: scalars}
