"""Re-ranking: business rules applied in the servable to the ranked candidates.

In order (each configurable in ``RerankConfig``):
  1. relevance: the list's scores min-max scaled to [0, 1] (-inf stays: "no
     candidate", e.g. excluded);
  2. freshness boost: + freshness_boost * exp(-item age in days / 30);
  3. dislikes: candidates too similar (item-embedding cosine) to an item the
     user rated at or below ``dislike_rating`` are demoted behind every other
     candidate (listed only when nothing else is left, so lists stay full);
  4. diversity: greedy MMR over the item embeddings, or plain top k when
     ``diversity`` is 0.
Items the user interacted with and the request's history and exclusions
never reach these rules: retrieval leaves them out.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import tensorflow as tf

from models import features
from models.index import contract


def disliked(data, threshold: float, index) -> Tuple[np.ndarray, np.ndarray]:
    """Per index user row, the positions of the items the user rated <= ``threshold``.

    Args:
      data: ``models.ranking.lists.Interactions`` placed in the index's catalogue.
      index: the retrieval servable (its user rows).

    Returns:
      (row_splits int64 [num_users + 2], positions int32): ragged rows for the
      index's users plus its extra row of unknown users (always empty).
    """
    ratings = data.columns[features.RATING]
    bad = (ratings <= threshold) & (ratings > 0) & (data.positions >= 0)
    users = data.columns[features.USER_ID]
    rows = index.lookup_users(tf.constant(users[bad], tf.string)).numpy()
    n_rows = contract.users_of(index) + 1
    keep = rows < n_rows - 1
    rows, positions = rows[keep], data.positions[bad][keep]
    order = np.lexsort((positions, rows))
    counts = np.bincount(rows, minlength=n_rows)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), \
        positions[order].astype(np.int32)


def relevance(scores: tf.Tensor) -> tf.Tensor:
    """Scores [b, c] min-max scaled to [0, 1] per row; -inf kept."""
    finite = tf.math.is_finite(scores)
    low = tf.reduce_min(tf.where(finite, scores, np.inf), axis=1, keepdims=True)
    high = tf.reduce_max(tf.where(finite, scores, -np.inf), axis=1, keepdims=True)
    scaled = (scores - low) / tf.maximum(high - low, 1e-9)
    return tf.where(finite, scaled, -np.inf)


# Subtracted from a demoted candidate's relevance (which is at most 1 + freshness_boost):
# it ranks behind every candidate that is not demoted, MMR's diversity term included.
DEMOTION = 1000.0


def demote_disliked(scores, items, disliked_items, threshold: float):
    """Scores minus DEMOTION where a candidate's unit embedding [b, c, d] has cosine >=
    threshold with one of the row's disliked unit embeddings (ragged [b, (m), d])."""
    dense = disliked_items.to_tensor()
    valid = tf.sequence_mask(disliked_items.row_lengths(), tf.shape(dense)[1])
    similarity = tf.einsum("bcd,bmd->bcm", items, dense)
    near = tf.reduce_any((similarity >= threshold) & valid[:, None, :], axis=2)
    return tf.where(near, scores - DEMOTION, scores)


def mmr(scores, items, k, diversity: float):
    """Greedy maximal marginal relevance: (order int32 [b, k], chosen scores [b, k]).

    Each step picks argmax of (1 - diversity) * score - diversity * (largest
    cosine to the items already picked); -inf scores are never preferred.
    """
    similarity = tf.einsum("bcd,bed->bce", items, items)
    batch, width = tf.shape(scores)[0], tf.shape(scores)[1]

    def step(i, picked, closest, order, chosen):
        marginal = (1.0 - diversity) * scores - diversity * closest
        marginal = tf.where(tf.math.is_finite(scores), marginal, -1e30)
        pick = tf.argmax(tf.where(picked, -np.inf, marginal), axis=1, output_type=tf.int32)
        picked = picked | tf.one_hot(pick, width, on_value=True, off_value=False)
        closest = tf.maximum(closest, tf.gather(similarity, pick, batch_dims=1))
        return (i + 1, picked, closest, order.write(i, pick),
                chosen.write(i, tf.gather(scores, pick, batch_dims=1)))

    # An explicit loop: the servable's functions are traced without AutoGraph, which would
    # otherwise turn a Python loop over tf.range into this one.
    _, _, _, order, chosen = tf.while_loop(
        lambda i, *_: i < k, step,
        (tf.constant(0), tf.zeros([batch, width], tf.bool), tf.zeros([batch, width], tf.float32),
         tf.TensorArray(tf.int32, size=k), tf.TensorArray(tf.float32, size=k)))
    return tf.transpose(order.stack()), tf.transpose(chosen.stack())


def apply(scores, items, freshness, disliked_items, k, rules):
    """The rules on [b, c] candidate lists.

    Args:
      scores: float32 [b, c], ranked (or retrieval) scores; -inf: no candidate.
      items: float32 [b, c, d], the candidates' unit item embeddings.
      freshness: float32 [b, c] in (0, 1].
      disliked_items: ragged float32 [b, (m), d], unit embeddings of each
        user's disliked items.
      k: int32 scalar, list length (<= c).
      rules: a RerankConfig.

    Returns:
      (order int32 [b, k] into the candidates, scores float32 [b, k]).
    """
    adjusted = relevance(scores) + rules.freshness_boost * freshness
    if rules.dislike_similarity < 1.0:
        adjusted = demote_disliked(adjusted, items, disliked_items, rules.dislike_similarity)
    if rules.diversity > 0.0:
        return mmr(adjusted, items, k, rules.diversity)
    top_scores, order = tf.math.top_k(adjusted, k=k)
    return order, top_scores
