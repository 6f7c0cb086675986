"""Level 1-2: the ranking stage's training lists, losses and model, and the re-ranking rules."""

import numpy as np
import pytest
import tensorflow as tf

from models import features
from models.ranking import features as ranking_features
from models.ranking import lists, neighbours
from models.ranking.model import (
    LISTWISE,
    LOSS_FUNCTIONS,
    POINTWISE,
    Ranker,
    listwise_loss,
    pointwise_loss,
)
from pipeline.config import PipelineConfig, RankingConfig, RerankConfig
from recommender import rerank


def _interactions(timelines):
    """Interactions of {user: [item position, ...]} in time order (one second apart)."""
    users, items, times = [], [], []
    for user, positions in timelines.items():
        for t, position in enumerate(positions):
            users.append(user)
            items.append(f"i{position}")
            times.append(100 + t)
    columns = {features.USER_ID: np.array(users, dtype=object), features.ITEM_ID: np.array(items,
                                                                                           dtype=object),
               features.TIMESTAMP: np.array(times, np.int64)}
    order = np.lexsort((np.arange(len(users)), columns[features.TIMESTAMP], columns[features.USER_ID]))
    from models import arrays
    return lists.Interactions(columns, np.array([int(i[1:]) for i in items], np.int64),
                          arrays.runs(columns[features.USER_ID], order))


def test_anchors_cut_timelines_into_history_and_next_window():
    data = _interactions({"a": list(range(10)), "b": [3, 4]})
    cut = lists.anchors(data, fractions=(0.5, 0.8), window=0.2, min_interactions=5)
    # 'b' is too short; 'a' is cut after 5 and 8 items, labels are the next 2.
    assert len(cut.rows) == 2
    assert [list(e) for e in cut.excluded] == [[0, 1, 2, 3, 4], list(range(8))]
    assert [list(lab) for lab in cut.labels] == [[5, 6], [8, 9]]
    # The query's time is the interaction before the anchor, as the servable's last-seen time.
    assert list(cut.times) == [104, 107]
    assert list(data.columns[features.ITEM_ID][cut.rows]) == ["i5", "i8"]
    # Item 3: user b at time 100; item 10 never: the latest training time.
    np.testing.assert_array_equal(lists.first_seen(data, 12)[[0, 3, 10]], [100, 100, 109])


def test_top_candidates_match_a_full_sort_without_excluded_items():
    rng = np.random.default_rng(0)
    items, queries = rng.normal(size=(50, 4)), rng.normal(size=(7, 4))
    excluded = [rng.choice(50, 10, replace=False) for _ in range(7)]
    positions, scores = lists.top_candidates(queries, items, excluded, 5, max_scores=100)
    for q, ex, got, got_scores in zip(queries, excluded, positions, scores):
        full = items @ q
        full[ex] = -np.inf
        np.testing.assert_array_equal(got, np.argsort(-full)[:5])
        np.testing.assert_allclose(got_scores, np.sort(full)[::-1][:5], rtol=1e-6)
    # Fewer items left than asked for: the rest are -inf.
    _, few = lists.top_candidates(queries[:1], items[:3], [np.array([0])], 3)
    assert np.isneginf(few[0, 2]) and np.isfinite(few[0, :2]).all()


def test_popularity_of_training_lists_leaves_out_the_users_own_interactions():
    popularity = np.array([5.0, 1.0, 3.0])
    got = lists.other_users_popularity(popularity, np.array([[0, 1, 2]]), [np.array([1, 2])])
    np.testing.assert_array_equal(got, [[5, 0, 2]])
    np.testing.assert_array_equal(lists.label_matrix(np.array([[0, 1, 2]]), [np.array([2])]),
                                  [[0, 0, 1]])


def test_label_matrix_is_each_rows_own_membership_with_unknown_items_and_empty_sets():
    """One membership test over (row, item) keys: a label of one list never marks another
    list's candidate, -1 (an item outside the catalogue) matches only -1, empty sets none."""
    rng = np.random.default_rng(0)
    positions = rng.integers(-1, 12, size=(40, 7))
    labels = [rng.choice(np.arange(-1, 12), size=n, replace=False) for n in rng.integers(0, 5, 40)]
    labels[3] = np.array([], np.int64)
    expected = np.stack([np.isin(row, label) for row, label in zip(positions, labels)])
    np.testing.assert_array_equal(lists.label_matrix(positions, labels), expected.astype(np.float32))
    popularity = rng.integers(0, 9, 12).astype(np.float32)
    np.testing.assert_array_equal(lists.other_users_popularity(popularity, positions, labels),
                                  popularity[positions] - expected)
    # Row 0's labels put against row 1's candidates mark nothing there.
    assert lists.label_matrix(np.array([[5, 6], [1, 2]]), [np.array([1, 2]), np.array([9])]).sum() == 0
    assert lists.label_matrix(np.zeros((0, 3), np.int64), []).shape == (0, 3)


def test_losses_prefer_lists_with_positives_on_top_and_ignore_invalid_pairs():
    labels = tf.constant([[1.0, 0.0, 0.0]])
    valid = tf.constant([[True, True, False]])
    good, bad = tf.constant([[3.0, 0.0, 99.0]]), tf.constant([[0.0, 3.0, -99.0]])
    for loss in (pointwise_loss, listwise_loss):
        assert float(loss(labels, good, valid)) < float(loss(labels, bad, valid))
    # Listwise: -log softmax of the positive over the two valid pairs.
    np.testing.assert_allclose(float(listwise_loss(labels, good, valid)),
                               -np.log(np.exp(3) / (np.exp(3) + 1)), rtol=1e-5)
    # A list without a positive contributes nothing to the listwise loss.
    assert float(listwise_loss(tf.zeros([1, 3]), good, valid)) == 0.0
    assert set(LOSS_FUNCTIONS) == {POINTWISE, LISTWISE}


def _synthetic_lists(n_lists, width, dim, rng):
    """Lists where the label depends on popularity and freshness, which the retrieval
    score (the list's order) ignores: a ranker that reads them must beat the list order."""
    query = rng.normal(size=(n_lists, dim)).astype(np.float32)
    item_embeddings = rng.normal(size=(400, dim)).astype(np.float32)
    positions = np.stack([rng.choice(400, width, replace=False) for _ in range(n_lists)])
    scores = np.sort(rng.normal(size=(n_lists, width)).astype(np.float32), axis=1)[:, ::-1].copy()
    popularity = rng.poisson(3.0, size=400).astype(np.float32)
    first_seen = rng.integers(0, 100 * 86400, 400)
    time = np.full(n_lists, 100 * 86400, np.int64)
    utility = (np.log1p(popularity[positions]) + 2.0 * np.exp(
        -(time[:, None] - first_seen[positions]) / 86400 / 30) + 0.3 * scores)
    labels = (utility >= np.sort(utility, axis=1)[:, -3:-2]).astype(np.float32)
    history = np.full((n_lists, features.MAX_HISTORY), -1, np.int32)
    inputs = ranking_features.list_features(tf.constant(query), tf.constant(item_embeddings),
                              tf.constant(positions), tf.constant(scores),
                              tf.constant(popularity[positions]),
                              tf.constant(first_seen[positions]), tf.constant(history),
                              tf.constant(time), tuple(map(tf.constant, neighbours.none(400))),
                              tuple(map(tf.constant, lists.no_trend(400))))
    return inputs, labels


def _ndcg(order_scores, labels, k=5):
    order = np.argsort(-order_scores, axis=1, kind="stable")[:, :k]
    gains = np.take_along_axis(labels, order, axis=1)
    dcg = (gains / np.log2(np.arange(2, k + 2))).sum(axis=1)
    ideal = (np.sort(labels, axis=1)[:, ::-1][:, :k] / np.log2(np.arange(2, k + 2))).sum(axis=1)
    return float(np.mean(dcg / np.maximum(ideal, 1e-9)))


@pytest.mark.parametrize("loss", [POINTWISE, LISTWISE])
@pytest.mark.slow
def test_the_ranker_learns_what_retrieval_order_misses(loss):
    rng = np.random.default_rng(1)
    tf.keras.utils.set_random_seed(1)
    train, train_labels = _synthetic_lists(600, 20, 8, rng)
    held, held_labels = _synthetic_lists(200, 20, 8, rng)
    ranker = Ranker((32,), cross_layers=2, projection_dim=4)
    ranker.adapt(tf.reshape(train[ranking_features.SCALARS], [-1, len(ranking_features.SCALAR_NAMES)]))
    optimizer = tf.keras.optimizers.Adam(0.01)
    valid = tf.ones(train_labels.shape, tf.bool)
    for _ in range(60):
        with tf.GradientTape() as tape:
            value = LOSS_FUNCTIONS[loss](tf.constant(train_labels), ranker(train), valid)
        optimizer.apply_gradients(zip(tape.gradient(value, ranker.trainable_variables),
                                      ranker.trainable_variables))
    retrieval_order = -np.arange(20, dtype=np.float32)[None, :].repeat(200, axis=0)
    before = _ndcg(retrieval_order, held_labels)
    after = _ndcg(ranker(held).numpy(), held_labels)
    assert after > before + 0.2, (before, after)


@pytest.mark.slow
def test_a_warm_ranker_takes_every_served_weight_but_its_input_statistics(tmp_path):
    """A served ranker's state saved and applied to a new ranker: the new one scores exactly as
    the served one when adapted to the same inputs, keeps its own statistics when adapted to
    others, and a ranker of other layer sizes is refused, naming the weight."""
    from models.ranking import warm

    rng = np.random.default_rng(2)
    tf.keras.utils.set_random_seed(2)
    lists_a, labels = _synthetic_lists(100, 10, 8, rng)
    scalars = tf.reshape(lists_a[ranking_features.SCALARS], [-1, len(ranking_features.SCALAR_NAMES)])
    served = Ranker((16,), cross_layers=1, projection_dim=4)
    served.adapt(scalars)
    optimizer = tf.keras.optimizers.Adam(0.01)
    for _ in range(5):  # weights other than their initial values
        with tf.GradientTape() as tape:
            value = LOSS_FUNCTIONS[POINTWISE](tf.constant(labels), served(lists_a),
                                              tf.ones(labels.shape, tf.bool))
        optimizer.apply_gradients(zip(tape.gradient(value, served.trainable_variables),
                                      served.trainable_variables))
    warm.save(served, str(tmp_path))
    state = warm.load(str(tmp_path / warm.STATE))
    assert warm.load(str(tmp_path / "none.npz")) is None
    same = Ranker((16,), cross_layers=1, projection_dim=4)
    same.adapt(scalars)
    same(lists_a)  # built, with weights of its own
    assert not np.allclose(same(lists_a).numpy(), served(lists_a).numpy())
    assert warm.mismatch(state, same) is None
    warm.apply(state, same)
    np.testing.assert_allclose(same(lists_a).numpy(), served(lists_a).numpy(), rtol=1e-5, atol=1e-5)
    # Adapted to other inputs, it keeps its own statistics: only the learned weights were carried.
    shifted = Ranker((16,), cross_layers=1, projection_dim=4)
    shifted.adapt(scalars * 2.0 + 1.0)
    shifted(lists_a)
    warm.apply(state, shifted)
    np.testing.assert_allclose(shifted.normalize.mean.numpy(), (tf.reduce_mean(scalars, 0) * 2 + 1).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(shifted.deep[-1].kernel.numpy(), served.deep[-1].kernel.numpy())
    other = Ranker((8,), cross_layers=1, projection_dim=4)
    other.adapt(scalars)
    other(lists_a)
    reason = warm.mismatch(state, other)
    assert reason is not None and "is [" in reason and "other ranking" in reason


def test_list_features_read_history_age_and_scores():
    items = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = ranking_features.list_features(
        query=tf.constant([[1.0, 0.0]]), item_embeddings=items, positions=tf.constant([[2, 1]]),
        scores=tf.constant([[2.0, -np.inf]]), popularity=tf.constant([[3.0, 0.0]]),
        first_seen=tf.constant([[0, 86400 * 10]], tf.int64),
        history=tf.constant([[0, -1]], tf.int32), time=tf.constant([86400 * 5], tf.int64),
        # Item 0's neighbours: item 2 (3 users in common) and item 1 (1); 4, 2 and 8 users
        # interacted with items 0, 1 and 2: shrunk cosines 3 / (sqrt(32) + 10), 1 / (sqrt(8) + 10).
        neighbours=(tf.constant([[2, 1], [-1, -1], [0, -1]]),
                    tf.constant([[3.0, 1.0], [0.0, 0.0], [3.0, 0.0]]), tf.constant([4.0, 2.0, 8.0])),
        # Daily bins from day 0; item 2: 1 interaction on day 1, 2 on day 4; item 1: 5 on day 9.
        trend=(tf.constant([[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
                            [0, 0, 1, 1, 1, 3, 3, 3, 3, 3, 3]], tf.float32),
               tf.constant(0, tf.int64), tf.constant(86400, tf.int64), tf.constant(3)))
    scalars = dict(zip(ranking_features.SCALAR_NAMES, np.moveaxis(out[ranking_features.SCALARS].numpy()[0],
                                                                  -1, 0)))
    np.testing.assert_allclose(scalars["score"], [2.0, 0.0])  # -inf (no candidate) -> 0
    np.testing.assert_allclose(scalars["log_popularity"], np.log1p([3.0, 0.0]))
    np.testing.assert_allclose(scalars["signed_log_age_days"], [np.log1p(5), -np.log1p(5)],
                               rtol=1e-6)
    np.testing.assert_allclose(scalars["freshness"], [np.exp(-5 / 30), 1.0], rtol=1e-6)
    np.testing.assert_allclose(scalars["history_max_similarity"], [np.sqrt(0.5), 0.0], atol=1e-6)
    np.testing.assert_allclose(scalars["log_history_length"], np.log1p([1, 1]))
    # The request is on day 5: the 3 days up to it (days 3-5) hold item 2's 2 interactions.
    np.testing.assert_allclose(scalars["log_recent_popularity"], np.log1p([2.0, 0.0]), rtol=1e-6)
    to_2, to_1 = 3 / (np.sqrt(32) + 10), 1 / (np.sqrt(8) + 10)
    np.testing.assert_allclose(scalars["neighbour_max"], [to_2, to_1], rtol=1e-6)
    np.testing.assert_allclose(scalars["log_neighbour_sum"], np.log1p([to_2, to_1]), rtol=1e-6)


def test_neighbour_similarity_sums_over_history_and_its_latest_items():
    # Candidates 3 and 4; history oldest first: items 0, 1, 2 (then padding). Every item has
    # 9 users, so a pair's shrunk cosine (shrink 1) is its co-occurrence / 10.
    ids = tf.constant([[3, 4], [3, -1], [4, -1], [-1, -1], [-1, -1]])
    cooccurrences = tf.constant([[6.0, 2.0], [3.0, 0.0], [5.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    table = (ids, cooccurrences, tf.fill([5], 9.0))
    total, largest, recent = ranking_features.neighbour_similarity(
        tf.constant([[3, 4]]), tf.constant([[0, 1, 2, -1]]), table, recent=2, shrink=1.0)
    np.testing.assert_allclose(total.numpy(), [[0.9, 0.7]], rtol=1e-6)
    np.testing.assert_allclose(largest.numpy(), [[0.6, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(recent.numpy(), [[0.3, 0.5]], rtol=1e-6)  # items 1 and 2 only
    # Candidate 3 is the user's own (a training list's later item): the user leaves its
    # co-occurrences (6, 3 -> 5, 2) and its count (9 -> 8): 5 / (sqrt(72) + 1), 2 / (sqrt(72) + 1).
    total, largest, _ = ranking_features.neighbour_similarity(
        tf.constant([[3, 4]]), tf.constant([[0, 1, 2, -1]]), table,
        own=tf.constant([[True, False]]), recent=2, shrink=1.0)
    np.testing.assert_allclose(total.numpy(), [[7 / (np.sqrt(72) + 1), 0.7]], rtol=1e-6)
    np.testing.assert_allclose(largest.numpy()[0, 0], 5 / (np.sqrt(72) + 1), rtol=1e-6)


def test_trend_counts_each_items_interactions_by_day():
    data = lists.Interactions({features.TIMESTAMP: np.array([0, 86400, 4 * 86400 + 5, 4 * 86400, 9 * 86400])},
                          np.array([2, 2, 2, 0, -1]), [])
    table = lists.trend(data, 3, days=2)
    assert (int(table.start), int(table.width), int(table.window)) == (0, 86400, 2)
    np.testing.assert_array_equal(table.cumulative[2], [0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(table.cumulative[0][-1], 1)  # item outside the catalogue: none
    at = ranking_features.recent_popularity(tf.constant([[2, 0, 1]]), tf.constant([5 * 86400], tf.int64),
                              tuple(map(tf.constant, table)))
    np.testing.assert_array_equal(at.numpy(), [[1.0, 1.0, 0.0]])  # days 4-5


def test_item_neighbours_are_shrunk_cosines_of_user_sets():
    # Users: a saw items 0, 1; b saw 0, 1, 2; c saw 2. Item 3 nobody.
    users = np.array(["a", "a", "b", "b", "b", "c", "a"])
    positions = np.array([0, 1, 0, 1, 2, 2, 1])  # a's second interaction with 1 counts once
    table = neighbours.item_neighbours(users, positions, 4, m=2, shrink=1.0)
    # |U0 & U1| = 2, |U0| = |U1| = 2: 2 / (2 + 1) first; |U0 & U2| = 1, |U2| = 2: 1 / (2 + 1).
    np.testing.assert_array_equal(table.ids[0], [1, 2])
    np.testing.assert_array_equal(table.cooccurrences[0], [2.0, 1.0])
    np.testing.assert_array_equal(table.counts, [2.0, 2.0, 2.0, 0.0])
    np.testing.assert_array_equal(table.ids[2], [0, 1])
    np.testing.assert_array_equal(table.ids[3], [-1, -1])  # nobody: no neighbours
    np.testing.assert_array_equal(table.cooccurrences[3], [0.0, 0.0])


def _unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_rules_keep_the_ranked_order_when_off_and_never_promote_missing_candidates():
    scores = tf.constant([[0.2, 3.0, -np.inf, 1.0]])
    items = tf.constant(_unit(np.eye(4))[None])
    no_dislikes = tf.RaggedTensor.from_row_lengths(tf.zeros([0, 4]), [0])
    rules = RerankConfig(dislike_similarity=1.0)
    order, got = rerank.apply(scores, items, tf.ones([1, 4]), no_dislikes, 4, rules)
    assert list(order.numpy()[0][:3]) == [1, 3, 0] and np.isneginf(got.numpy()[0][3])
    np.testing.assert_allclose(got.numpy()[0][:3], [1.0, 0.8 / 2.8, 0.0], rtol=1e-6)


def test_mmr_pushes_a_near_duplicate_down_and_freshness_lifts_new_items():
    # Items 0 and 1 are near-duplicates and the two best; item 2 is different.
    items = tf.constant(_unit([[1, 0], [0.99, 0.14], [0, 1]])[None])
    scores = tf.constant([[1.0, 0.95, 0.7]])
    none = tf.RaggedTensor.from_row_lengths(tf.zeros([0, 2]), [0])
    plain, _ = rerank.apply(scores, items, tf.zeros([1, 3]), none, 3, RerankConfig())
    diverse, _ = rerank.apply(scores, items, tf.zeros([1, 3]), none, 3,
                              RerankConfig(diversity=0.5))
    assert list(plain.numpy()[0]) == [0, 1, 2] and list(diverse.numpy()[0]) == [0, 2, 1]
    fresh, _ = rerank.apply(scores, items, tf.constant([[0.0, 0.0, 1.0]]), none, 3,
                            RerankConfig(freshness_boost=2.0))
    assert fresh.numpy()[0][0] == 2


def test_candidates_close_to_a_disliked_item_go_behind_all_others_but_keep_the_list_full():
    items = tf.constant(_unit([[1, 0], [0.99, 0.14], [0, 1]])[None])
    disliked = tf.RaggedTensor.from_row_lengths(tf.constant(_unit([[1, 0.05]])), [1])
    for diversity in (0.0, 0.5):
        order, scores = rerank.apply(tf.constant([[1.0, 0.9, 0.1]]), items, tf.zeros([1, 3]),
                                     disliked, 3,
                                     RerankConfig(dislike_similarity=0.9, diversity=diversity))
        assert list(order.numpy()[0]) == [2, 0, 1]
        assert np.isfinite(scores.numpy()).all() and (scores.numpy()[0][1:] < 0).all()


def test_invalid_ranking_and_rerank_settings_name_the_field():
    for bad, field in ((dict(ranking=RankingConfig(loss="pairwise")), "ranking.loss"),
                       (dict(rerank=RerankConfig(diversity=1.0)), "rerank.diversity"),
                       (dict(rerank=RerankConfig(max_k=5)), "rerank.max_k")):
        with pytest.raises(ValueError, match=field):
            PipelineConfig(**bad).validate()


def test_variable_length_histories_are_read_across_batches_of_different_widths(tmp_path):
    from models import records

    path = str(tmp_path / "part.gz")
    histories = [[], ["a"], ["a", "b", "c"], ["d"]]
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for history in histories:
            example = tf.train.Example(features=tf.train.Features(feature={
                features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u"])),
                features.HISTORY: tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[h.encode() for h in history]))}))
            writer.write(example.SerializeToString())
    spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
            features.HISTORY: tf.io.VarLenFeature(tf.string)}
    # Batches of 2: widths 1 and 3.
    columns = records.read_columns([path], spec, batch_size=2)
    assert columns[features.HISTORY].tolist() == [["", "", ""], ["a", "", ""], ["a", "b", "c"],
                                           ["d", "", ""]]


def test_histories_come_from_the_timelines_as_the_example_gen_wrote_them(tiny_data, tmp_path):
    """The ranking lists no longer read each example's history feature (50 strings per
    interaction): the history of the rows they need is cut from the user's timeline, and it is
    the ExampleGen's history feature, row for row."""
    from models.data import examples, readers, splits

    ds = readers.read_dataset(tiny_data)
    indices = splits.temporal_split(ds.interactions, 0.2)[features.TRAIN]
    histories = splits.Histories(ds.interactions, features.MAX_HISTORY)
    path = str(tmp_path / "train.tfrecord.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as f:
        for record in examples.interaction_examples(ds, indices, histories):
            f.write(record)
    data = lists.read([path], lambda ids: np.zeros(len(ids), np.int64))
    rows = np.arange(0, len(indices), 97)
    spec = dict(lists.SPEC, **{features.HISTORY: tf.io.VarLenFeature(tf.string)})
    from models import records
    written = records.read_columns([path], spec)
    got = data.history(rows)
    for row, history in zip(rows, got):
        want = [item for item in written[features.HISTORY][row] if item]
        assert [item for item in history if item] == want
    assert sum(1 for h in got if h[0]) > len(rows) / 2
