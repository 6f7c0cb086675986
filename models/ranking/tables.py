"""Per-item tables the ranker's features read, from an index servable and interactions.

The ranking trainer builds them for its training and held-out lists; the
recommender assembly builds them again from the same index and interactions
for the servable, so what the ranker learned on is what it scores when served.
"""

from __future__ import annotations

import tensorflow as tf

from models import features
from models.ranking import lists, neighbours
from models.ranking.features import list_features


class Tables:
    """Embeddings and popularity (the index's), and first-seen time, daily counts and
    item-to-item neighbours of the interactions ``data``.

    Args:
      index: a loaded index servable (models/index/contract.py).
      data: ``lists.Interactions`` placed in the index's catalogue.
      n_neighbours: neighbours per item (0: none; RankingConfig.neighbours).
    """

    def __init__(self, index, data: lists.Interactions, n_neighbours: int):
        n_items = int(index.item_embeddings.shape[0])
        self.item_embeddings = index.item_embeddings
        self.popularity = index.popularity.numpy()
        self.first_seen = lists.first_seen(data, n_items)
        self.trend = lists.trend(data, n_items)
        self.neighbours = (neighbours.item_neighbours(data.columns[features.USER_ID], data.positions,
                                                      n_items, n_neighbours)
                           if n_neighbours else neighbours.none(n_items))

    def features(self, query, positions, scores, popularity, history, time, own=None):
        """``list_features`` of [b, c] lists given as numpy arrays."""
        return list_features(tf.constant(query), self.item_embeddings, tf.constant(positions),
                             tf.constant(scores), tf.constant(popularity, tf.float32),
                             tf.constant(self.first_seen[positions]), tf.constant(history),
                             tf.constant(time, tf.int64), tuple(map(tf.constant, self.neighbours)),
                             tuple(map(tf.constant, self.trend)),
                             None if own is None else tf.constant(own))


def interactions(index, files) -> lists.Interactions:
    """The interactions of ``files`` placed in ``index``'s catalogue."""
    return lists.read(files, lambda ids: index.lookup_items(tf.constant(ids, tf.string)).numpy())


def read(index, files, n_neighbours: int):
    """(the interactions of ``files`` placed in ``index``'s catalogue, their Tables)."""
    data = interactions(index, files)
    return data, Tables(index, data, n_neighbours)
