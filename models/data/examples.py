"""Conversion of canonical rows to tf.train.Example, the payload of the Examples artifacts."""

from __future__ import annotations

from typing import Iterator

import tensorflow as tf

from models import features
from models.data.readers import Dataset
from models.data.splits import Histories
from models.records import bytes_feature, float_feature, int_feature


def item_features(item_id: str, item: dict) -> dict:
    return {
        features.ITEM_ID: bytes_feature(item_id),
        features.TITLE: bytes_feature(item[features.TITLE]),
        features.GENRES: bytes_feature(*item[features.GENRES]),
        features.YEAR: int_feature(item[features.YEAR]),
    }


def interaction_examples(dataset: Dataset, indices, histories: Histories) -> Iterator[bytes]:
    """Serialized examples of interactions ``indices``, joined with user and item features
    and with the user's history before each interaction."""
    inter = dataset.interactions
    for i in indices:
        user_id, item_id = inter[features.USER_ID][i], inter[features.ITEM_ID][i]
        user = dataset.users[user_id]
        feature = item_features(item_id, dataset.items[item_id])
        feature.update({
            features.USER_ID: bytes_feature(user_id),
            features.TIMESTAMP: int_feature(inter[features.TIMESTAMP][i]),
            features.RATING: float_feature(inter[features.RATING][i]),
            features.AGE: int_feature(user[features.AGE]),
            features.GENDER: bytes_feature(user[features.GENDER]),
            features.OCCUPATION: bytes_feature(user[features.OCCUPATION]),
            features.HISTORY: bytes_feature(*histories.of(i)),
        })
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def catalogue_examples(dataset: Dataset) -> Iterator[bytes]:
    """Serialized examples of every catalogue item, interacted with or not."""
    for item_id in sorted(dataset.items):
        feature = item_features(item_id, dataset.items[item_id])
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
