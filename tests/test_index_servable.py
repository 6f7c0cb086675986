"""Level 2: the retrieval index servable on hand-made embeddings, saved and reloaded."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from components.index import indexer, servable

ITEMS = np.array(["a", "b", "c", "d", "e"])
# Item i lies along axis i: a user's dot products are just their coordinates.
ITEM_VECTORS = np.eye(5, dtype=np.float32)
USERS = np.array(["u1", "u2"])
USER_VECTORS = np.array([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]], dtype=np.float32)
POPULARITY = np.array([1, 9, 3, 7, 5], dtype=np.float32)
# u1 saw 'a'; u2 saw 'e' and 'd'.
ROW_SPLITS = np.array([0, 1, 3])
SEEN = np.array([0, 4, 3])


def make_index(flavour=servable.EXACT, candidates=3):
    return servable.RetrievalIndex(ITEMS, ITEM_VECTORS, [f"T {i}" for i in ITEMS], POPULARITY, USERS,
                                   USER_VECTORS, ROW_SPLITS, SEEN, candidates, flavour,
                                   num_leaves=2, leaves_to_search=2)


def ids(out):
    return [[i.decode() for i in row] for row in out["item_ids"].numpy()]


def test_exact_index_excludes_seen_items_and_ranks_by_dot_product():
    index = make_index()  # tf.function methods hold their module weakly: keep a reference
    out = index.retrieve(tf.constant(["u1", "u2"]))
    assert ids(out) == [["b", "c", "d"], ["c", "b", "a"]]
    np.testing.assert_allclose(out["scores"].numpy(), [[4, 3, 2], [3, 2, 1]])


def test_unknown_user_gets_popularity_list():
    index = make_index()
    out = index.retrieve(tf.constant(["stranger"]))
    assert ids(out) == [["b", "d", "e"]]


def random_index(flavour, n_items=300, n_users=20, seed=0):
    """Random catalogue large enough for ScaNN's quantiser; every leaf searched."""
    rng = np.random.default_rng(seed)
    items = np.array([f"i{i}" for i in range(n_items)])
    seen = rng.choice(n_items, size=(n_users, 5))
    seen.sort(axis=1)
    return servable.RetrievalIndex(
        items, rng.normal(size=(n_items, 8)).astype(np.float32), items, rng.random(n_items),
        np.array([f"u{u}" for u in range(n_users)]), rng.normal(size=(n_users, 8)).astype(np.float32),
        np.arange(0, 5 * n_users + 1, 5), seen.reshape(-1), 10, flavour,
        num_leaves=4, leaves_to_search=4)


def test_scann_flavour_agrees_with_exact_when_every_leaf_is_searched():
    exact_index, scann_index = random_index(servable.EXACT), random_index(servable.SCANN)
    users = tf.constant([f"u{u}" for u in range(20)] + ["nobody"])
    exact, scann = ids(exact_index.retrieve(users)), ids(scann_index.retrieve(users))
    overlap = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact, scann)])
    assert overlap >= 0.95
    assert scann[-1] == exact[-1]  # the popularity fallback is the same list


def test_choose_flavour_by_catalogue_size():
    assert indexer.choose_flavour("auto", 19_999, 20_000) == servable.EXACT
    assert indexer.choose_flavour("auto", 20_000, 20_000) == servable.SCANN
    assert indexer.choose_flavour("exact", 10**6, 20_000) == servable.EXACT


@pytest.mark.slow
def test_exact_servable_reloads_in_a_process_that_never_imports_scann(tmp_path):
    servable.save(make_index(), str(tmp_path))
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        model = tf.saved_model.load({str(tmp_path)!r})
        out = model.signatures["serving_default"](user_id=tf.constant(["u2", "nobody"]))
        print([[i.decode() for i in row] for row in out["item_ids"].numpy()])
        titles = model.signatures["lookup_titles"](item_ids=tf.constant(["c", "zz"]))["titles"]
        print([t.decode() for t in titles.numpy()])
        assert "scann" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "[['c', 'b', 'a'], ['b', 'd', 'e']]"
    assert lines[-1] == "['T c', '']"


@pytest.mark.slow
def test_scann_servable_saves_and_reloads(tmp_path):
    index = random_index(servable.SCANN)
    before = ids(index.retrieve(tf.constant(["u3", "u7"])))
    servable.save(index, str(tmp_path))
    import scann  # noqa: F401  (registers ScaNN's ops in this process)

    model = tf.saved_model.load(str(tmp_path))
    out = model.signatures["serving_default"](user_id=tf.constant(["u3", "u7"]))
    assert ids(out) == before
