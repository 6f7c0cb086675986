"""Level 2: the retrieval index servable on hand-made embeddings, saved and reloaded."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from models import features
from models.index import contract, searcher, servable
from models.transform import raw
from pipeline.config import IndexConfig

ITEMS = np.array(["a", "b", "c", "d", "e"])
# Item i lies along axis i: a query's dot products are just its coordinates.
ITEM_VECTORS = np.eye(5, dtype=np.float32)
USERS = np.array(["u1", "u2"])
USER_VECTORS = np.array([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]], dtype=np.float32)
POPULARITY = np.array([1, 9, 3, 7, 5], dtype=np.float32)


class TableEncoder(tf.Module):
    """A stand-in query tower with known answers.

    query = the user's vector (zero if unknown) + for each history item the axis
    of the *next* item in the catalogue (a -> b, ..., e -> a) + 3 * axis 'd' if
    gender is 'F'.
    """

    def __init__(self, users, vectors, items):
        super().__init__()
        dim = vectors.shape[1]
        self.vectors = tf.Variable(np.vstack([vectors, np.zeros((1, dim))]).astype(np.float32))
        self.users = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(users), tf.range(len(users), dtype=tf.int64)),
            len(users))
        self.next_item = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                list(items), tf.constant([(i + 1) % len(items) for i in range(len(items))], tf.int64)),
            -1)
        self.dim = dim

    @tf.function(input_signature=[raw.USER_SIGNATURE])
    def query_embedding(self, inputs):
        query = tf.gather(self.vectors, self.users.lookup(inputs[features.USER_ID]))
        following = self.next_item.lookup(inputs[features.HISTORY])
        query += tf.reduce_sum(tf.one_hot(following, self.dim), axis=1)  # -1 -> zeros
        female = tf.cast(inputs[features.GENDER] == "F", tf.float32)[:, None]
        return {"embedding": query + 3.0 * female * tf.one_hot([3], self.dim)}


def make_users(ids, seen, histories=None):
    splits = np.cumsum([0] + [len(s) for s in seen])
    histories = histories if histories is not None else [[""] * 2 for _ in ids]
    return servable.Users(
        ids=np.array(ids), ages=np.full(len(ids), 30), genders=np.array(["M"] * len(ids)),
        occupations=np.array(["x"] * len(ids)), histories=np.array(histories, dtype=object),
        last_seen=np.arange(len(ids)), seen_row_splits=splits,
        seen_items=np.array([p for row in seen for p in row], np.int32))


def make_index(candidates=3):
    # u1 saw 'a'; u2 saw 'e' and 'd'. Stored histories are empty, so queries are the vectors.
    users = make_users(USERS, [[0], [4, 3]])
    return servable.RetrievalIndex(ITEMS, ITEM_VECTORS, [f"T {i}" for i in ITEMS], POPULARITY, users,
                                   TableEncoder(USERS, USER_VECTORS, ITEMS), candidates)


def context(user_ids, histories, genders=None, exclude=None):
    width = max(1, max(len(h) for h in histories))
    exclude = exclude or [[] for _ in user_ids]
    excluded = max(1, max(len(e) for e in exclude))
    return {
        servable.EXCLUDE: tf.constant([e + [""] * (excluded - len(e)) for e in exclude]),
        features.USER_ID: tf.constant(user_ids),
        features.AGE: tf.zeros([len(user_ids)], tf.int64),
        features.GENDER: tf.constant(genders or [""] * len(user_ids)),
        features.OCCUPATION: tf.constant([""] * len(user_ids)),
        features.HISTORY: tf.constant([h + [""] * (width - len(h)) for h in histories]),
    }


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


def test_request_history_personalises_a_new_user_and_is_excluded():
    index = make_index()
    out = index.retrieve_with_context(context(["new", "u1"], [["b"], ["d"]]))
    got = ids(out)
    # 'new' has only the history: its query is the axis of 'c', the item after 'b'.
    assert got[0][0] == "c" and "b" not in got[0]
    # u1's stored vector plus the axis of 'e' (after 'd'); 'a' (seen) and 'd' (request) excluded.
    assert got[1] == ["b", "c", "e"]
    np.testing.assert_allclose(out["scores"].numpy()[1], [4, 3, 2])


def test_demographics_alone_personalise_and_empty_context_falls_back_to_popularity():
    index = make_index()
    got = ids(index.retrieve_with_context(context(["new", "new"], [[], []], genders=["F", ""])))
    assert got[0][0] == "d"  # the 'F' direction of the stand-in tower
    assert got[1] == ["b", "d", "e"]  # nothing to personalise on: popularity


def test_popularity_fallback_honours_the_request_exclusions():
    """A new or anonymous user never gets back what the caller asked never to see."""
    index = make_index()
    got = ids(index.retrieve_with_context(context(["new", "new"], [[], []],
                                                  exclude=[["b", "e"], ["zzz"]])))
    assert got[0] == ["d", "c", "a"]  # popularity order without 'b' and 'e'
    assert got[1] == ["b", "d", "e"]  # an unknown id excludes nothing


def test_request_history_unknown_items_are_ignored():
    index = make_index()
    out = index.retrieve_with_context(context(["u2"], [["zzz", "c"]]))
    # u2's vector + axis of 'd' (after 'c'); 'd', 'e' seen and 'c' requested are excluded:
    # two items remain, and the third slot says so with a score of -inf.
    assert ids(out)[0][:2] == ["b", "a"]
    assert np.isneginf(out["scores"].numpy()[0][2])


def random_index(flavour, n_items=300, n_users=20, seed=0):
    """Random catalogue large enough for ScaNN's quantiser; every leaf searched."""
    rng = np.random.default_rng(seed)
    items = np.array([f"i{i}" for i in range(n_items)])
    user_ids = np.array([f"u{u}" for u in range(n_users)])
    seen = np.sort(rng.choice(n_items, size=(n_users, 5)), axis=1)
    encoder = TableEncoder(user_ids, rng.normal(size=(n_users, 8)).astype(np.float32), items[:8])
    return servable.RetrievalIndex(
        items, rng.normal(size=(n_items, 8)).astype(np.float32), items, rng.random(n_items),
        make_users(user_ids, list(seen)), encoder, 10,
        searcher.resolve(IndexConfig(flavour=flavour, num_leaves=4, num_leaves_to_search=4),
                         n_items, 60))


def test_scann_flavour_agrees_with_exact_when_every_leaf_is_searched():
    exact_index, scann_index = random_index(servable.EXACT), random_index(servable.SCANN)
    users = tf.constant([f"u{u}" for u in range(20)] + ["nobody"])
    exact, scann = ids(exact_index.retrieve(users)), ids(scann_index.retrieve(users))
    overlap = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact, scann)])
    assert overlap >= 0.95
    assert scann[-1] == exact[-1]  # the popularity fallback is the same list


def test_choose_flavour_by_catalogue_size():
    assert searcher.choose_flavour("auto", 19_999, 20_000) == servable.EXACT
    assert searcher.choose_flavour("auto", 20_000, 20_000) == servable.SCANN
    assert searcher.choose_flavour("exact", 10**6, 20_000) == servable.EXACT
    with pytest.raises(ValueError, match="'auto', 'exact' or 'scann'"):
        searcher.choose_flavour("annoy", 10, 20_000)


def test_automatic_settings_follow_scann_guidance_and_every_knob_overrides():
    small = searcher.resolve(IndexConfig(), 19_999, 150)
    assert small == searcher.Settings(searcher.EXACT)
    big = searcher.resolve(IndexConfig(), 1_000_000, 150)
    assert (big.flavour, big.num_leaves, big.num_leaves_to_search) == (searcher.SCANN, 1000, 50)
    assert (big.dimensions_per_block, big.anisotropic_quantization_threshold) == (2, 0.2)
    assert big.reordering_candidates == 600 and big.training_sample_size == 100_000
    custom = searcher.resolve(IndexConfig(flavour="scann", num_leaves=40, num_leaves_to_search=3,
                                          reordering_candidates=0, dimensions_per_block=4,
                                          anisotropic_quantization_threshold=0.3,
                                          training_sample_size=500), 1_000, 150)
    assert custom == searcher.Settings(searcher.SCANN, 40, 3, 500, 4, 0.3, 0)
    assert "no re-ordering" in custom.describe() and "40 leaves" in custom.describe()
    with pytest.raises(ValueError, match="at least 16 items"):
        searcher.resolve(IndexConfig(flavour="scann"), 5, 3)


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


def test_the_contract_names_every_output_and_variable_readers_use():
    index = make_index()
    contract.check(index)  # a servable built here keeps the contract
    found = contract.Retrieved.of(index.retrieve_positions(tf.constant(["u1"])))
    assert found.positions.dtype == tf.int32 and found.scores.shape == found.positions.shape
    assert contract.candidates_of(index) == 3 and contract.users_of(index) == len(
        index.user_ids.numpy())
    with pytest.raises(KeyError, match=r"lacks \['unknown'\]"):
        contract.Retrieved.of({k: v for k, v in found.outputs().items() if k != "unknown"})

    class Renamed(tf.Module):  # a servable whose popularity variable was renamed
        pass

    renamed = Renamed()
    for name in contract.STATE:
        setattr(renamed, "item_counts" if name == "popularity" else name, getattr(index, name))
    with pytest.raises(ValueError, match=r"lacks \['popularity'\] of the index contract"):
        contract.check(renamed)
