"""Level 2: the two-tower model and its trainer's helpers on planted data, no TFX."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models import features
from models.retrieval import trainer
from models.retrieval.model import TwoTowerModel
from pipeline.config import RetrievalConfig

pytestmark = pytest.mark.slow

# The attribute vocabulary holds 2 genders, 3 occupations and 4 genres (models/features.py).
SIZES = {features.USER_VOCAB: 200, features.ITEM_VOCAB: 80, features.ATTRIBUTE_VOCAB: 9,
         features.TITLE_VOCAB: 10}
CLUSTERS = 4  # item i belongs to cluster i % 4, which is also its only genre


def _item_features(items):
    items = np.asarray(items, np.int64)
    genres = np.zeros(items.shape + (features.MAX_GENRES,), np.int64)
    genres[..., 0] = items % CLUSTERS + 2  # genre ids start at 2 (0 pads, 1 is unknown)
    return {features.ITEM_IDX: items, features.GENRE_IDS: genres,
            features.TITLE_TOKENS: np.zeros(items.shape + (features.MAX_TITLE_TOKENS,), np.int64),
            features.YEAR_BUCKET: np.zeros(items.shape, np.int64)}


def planted(n_users, rng):
    """Each user likes one cluster: their history and their next item come from it."""
    cluster = rng.integers(0, CLUSTERS, n_users)
    items = np.arange(1, SIZES[features.ITEM_VOCAB] + 1)
    members = [items[items % CLUSTERS == c] for c in range(CLUSTERS)]
    history = np.zeros((n_users, features.MAX_HISTORY), np.int64)
    target = np.zeros(n_users, np.int64)
    for u in range(n_users):
        picks = rng.choice(members[cluster[u]], 9, replace=False)
        history[u, :8], target[u] = picks[:8], picks[8]
    inputs = {features.USER_IDX: np.arange(n_users, dtype=np.int64) % SIZES[features.USER_VOCAB] + 1,
                features.GENDER_IDX: np.ones(n_users, np.int64), features.OCCUPATION_IDX: np.ones(n_users,
                                                                                                  np.int64),
                features.AGE_BUCKET: np.ones(n_users, np.int64), features.HISTORY_IDS: history,
                features.TIME_SCALED: np.full(n_users, 0.5, np.float32), **_item_features(target)}
    return inputs, cluster


def test_history_places_users_never_seen_in_training():
    rng = np.random.default_rng(0)
    tf.keras.utils.set_random_seed(0)
    train, _ = planted(3000, rng)
    config = dataclasses.replace(RetrievalConfig(), batch_size=128, embedding_dim=16, feature_dim=16,
                                 uniform_negatives=32)
    probability = np.full(SIZES[features.ITEM_VOCAB] + 1, 1.0 / SIZES[features.ITEM_VOCAB], np.float32)
    table = _item_features(np.arange(SIZES[features.ITEM_VOCAB] + 1))
    model = TwoTowerModel(SIZES, probability, table, config)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(train).shuffle(3000, seed=0).batch(128),
              epochs=4, verbose=0)

    # New users: out-of-vocabulary id (0), a history only.
    test, cluster = planted(300, np.random.default_rng(1))
    test[features.USER_IDX][:] = 0
    query = model.query_tower(test).numpy()
    items = model.candidate_tower(table).numpy()[1:]
    top = np.argsort(-(query @ items.T), axis=1)[:, :10] + 1
    same_cluster = np.mean(top % CLUSTERS == cluster[:, None])
    hits = np.mean([t in row for t, row in zip(test[features.ITEM_IDX], top)])
    # Chance: a quarter of the items share the cluster; 10 of 80 items are a hit 12.5% of the time.
    assert same_cluster > 0.9
    assert hits > 0.35

    # A new item (out-of-vocabulary id) is placed by its genre alone.
    new_items = {key: value[:CLUSTERS] for key, value in _item_features(np.arange(CLUSTERS)).items()}
    new_items[features.ITEM_IDX] = np.zeros(CLUSTERS, np.int64)
    new_vectors = model.candidate_tower(new_items).numpy()
    best_new = np.argmax(query @ new_vectors.T, axis=1)
    assert np.mean(best_new == cluster) > 0.9


def _batches(columns, size=3):
    return tf.data.Dataset.from_tensor_slices(columns).batch(size)


def test_scan_training_and_eval_users_as_the_servable_sees_them():
    n_items = 6
    train = {features.USER_IDX: np.array([1, 1, 2, 2, 2]), **_item_features([1, 2, 2, 3, 4])}
    data = trainer.scan_training(_batches(train), n_items)
    np.testing.assert_array_equal(data.counts, [0, 1, 2, 1, 1, 0, 0])
    np.testing.assert_array_equal(data.item_table[features.GENRE_IDS][:5, 0], [0, 3, 4, 5, 2])
    assert {u: list(v) for u, v in data.seen.items()} == {1: [1, 2], 2: [2, 3, 4]}

    history = np.zeros((4, features.MAX_HISTORY), np.int64)
    history[0, :3], history[1, :2], history[2, :3] = [1, 2, 5], [1, 2], [2, 3, 4]
    evaluation = {features.USER_IDX: np.array([1, 1, 2, 3]), features.GENDER_IDX: np.ones(4, np.int64),
                  features.OCCUPATION_IDX: np.ones(4, np.int64), features.AGE_BUCKET: np.ones(4, np.int64),
                  features.HISTORY_IDS: history, features.TIME_SCALED: np.array([0.9, 0.9, 0.8, 0.7],
                                                                                np.float32),
                  **_item_features([6, 5, 5, 1])}
    users = trainer.scan_eval(_batches(evaluation), data.seen, max_users=10, seed=0)
    # User 1's two eval rows share a time: the one with the shorter history comes first.
    np.testing.assert_array_equal(users.queries[features.USER_IDX], [1, 2, 3])
    np.testing.assert_array_equal(np.count_nonzero(users.queries[features.HISTORY_IDS], axis=1), [2, 3, 0])
    assert [sorted(t) for t in users.targets] == [[5, 6], [5], [1]]
    assert [list(s) for s in users.seen] == [[1, 2], [2, 3, 4], []]


def test_new_user_dropout_trains_on_requests_without_id_or_history():
    """At rate 1 every training example is a new user's request: the query depends on the
    demographics alone; at rate 0 on the id and the history too."""
    inputs, _ = planted(6, np.random.default_rng(0))
    queries = {}
    for rate in (0.0, 1.0):
        config = dataclasses.replace(RetrievalConfig(), embedding_dim=8, feature_dim=8,
                                     user_id_dropout=0.0, new_user_dropout=rate)
        probability = np.full(SIZES[features.ITEM_VOCAB] + 1, 1.0 / SIZES[features.ITEM_VOCAB],
                              np.float32)
        model = TwoTowerModel(SIZES, probability, _item_features(np.arange(81)), config)
        queries[rate] = model.query_tower(
            {k: tf.constant(v) for k, v in inputs.items()}, training=True).numpy()
    assert np.abs(queries[1.0] - queries[1.0][0]).max() < 1e-6  # same demographics, one query
    assert np.abs(queries[0.0] - queries[0.0][0]).max() > 1e-3
