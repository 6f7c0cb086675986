"""Conversion of canonical rows to tf.train.Example, the payload of the Examples artifacts."""

from __future__ import annotations

from typing import Dict, Iterator

from models import features, wire
from models.data.readers import Dataset
from models.data.splits import Histories


def item_fields(item_id: str, item: dict) -> Dict[str, bytes]:
    """An item's features, each a serialized tf.train.Feature."""
    return {
        features.ITEM_ID: wire.bytes_list([item_id.encode("utf-8")]),
        features.TITLE: wire.bytes_list([item[features.TITLE].encode("utf-8")]),
        features.GENRES: wire.bytes_list(g.encode("utf-8") for g in item[features.GENRES]),
        features.YEAR: wire.int64_list([item[features.YEAR]]),
        features.TAGS: wire.bytes_list(t.encode("utf-8") for t in item.get(features.TAGS, ())),
    }


def user_fields(user_id: str, user: dict) -> Dict[str, bytes]:
    """A user's features, each a serialized tf.train.Feature."""
    return {
        features.USER_ID: wire.bytes_list([user_id.encode("utf-8")]),
        features.AGE: wire.int64_list([user[features.AGE]]),
        features.GENDER: wire.bytes_list([user[features.GENDER].encode("utf-8")]),
        features.OCCUPATION: wire.bytes_list([user[features.OCCUPATION].encode("utf-8")]),
    }


def event_example(user: Dict[str, bytes], item: Dict[str, bytes], timestamp: int, rating: float,
                  history: bytes) -> bytes:
    """One serialized interaction example from its user's and item's serialized features and
    its history Feature (``wire.bytes_list`` of the user's earlier items, oldest first)."""
    return wire.example({**user, **item, features.TIMESTAMP: wire.int64_list([timestamp]),
                         features.RATING: wire.float_list([rating]), features.HISTORY: history})


def interaction_example(user_id: str, user: dict, item_id: str, item: dict, timestamp: int,
                        rating: float, history) -> bytes:
    """One serialized interaction example: the interaction, its user's and item's features and
    the user's items before it (oldest first)."""
    return event_example(user_fields(user_id, user), item_fields(item_id, item), timestamp, rating,
                         wire.bytes_list(h.encode("utf-8") for h in history))


def interaction_examples(dataset: Dataset, indices, histories: Histories) -> Iterator[bytes]:
    """Serialized examples of interactions ``indices`` of an in-memory dataset."""
    inter = dataset.interactions
    for i in indices:
        user_id, item_id = inter[features.USER_ID][i], inter[features.ITEM_ID][i]
        yield interaction_example(user_id, dataset.users[user_id], item_id, dataset.items[item_id],
                                  inter[features.TIMESTAMP][i], inter[features.RATING][i],
                                  histories.of(i))


def catalogue_example(item_id: str, item: dict) -> bytes:
    return wire.example(item_fields(item_id, item))


def catalogue_examples(dataset: Dataset) -> Iterator[bytes]:
    """Serialized examples of every catalogue item, interacted with or not."""
    for item_id in sorted(dataset.items):
        yield catalogue_example(item_id, dataset.items[item_id])
