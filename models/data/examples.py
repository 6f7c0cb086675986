"""Conversion of canonical rows to tf.train.Example, the payload of the Examples artifacts."""

from __future__ import annotations

from typing import Iterator

import tensorflow as tf

from models import features
from models.data.readers import Dataset
from models.data.splits import Histories


def _bytes(*values: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def item_features(item_id: str, item: dict) -> dict:
    return {
        features.ITEM_ID: _bytes(item_id),
        features.TITLE: _bytes(item[features.TITLE]),
        features.GENRES: _bytes(*item[features.GENRES]),
        features.YEAR: _int(item[features.YEAR]),
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
            features.USER_ID: _bytes(user_id),
            features.TIMESTAMP: _int(inter[features.TIMESTAMP][i]),
            features.RATING: _float(inter[features.RATING][i]),
            features.AGE: _int(user[features.AGE]),
            features.GENDER: _bytes(user[features.GENDER]),
            features.OCCUPATION: _bytes(user[features.OCCUPATION]),
            features.HISTORY: _bytes(*histories.of(i)),
        })
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def catalogue_examples(dataset: Dataset) -> Iterator[bytes]:
    """Serialized examples of every catalogue item, interacted with or not."""
    for item_id in sorted(dataset.items):
        feature = item_features(item_id, dataset.items[item_id])
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
