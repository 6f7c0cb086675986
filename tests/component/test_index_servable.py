"""Level 2: the retrieval index servable on hand-made embeddings, saved and reloaded."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from models.index import contract, searcher, servable
from pipeline.config import IndexConfig
from tests.support import (
    TableEncoder,
    context,
    ids,
    make_index,
    make_users,
)


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


def test_a_history_keeps_its_latest_items_in_order():
    rows = [[], ["a"], ["a", "b", "c"], [f"x{i}" for i in range(7)]]
    for n in (1, 3, 5):
        got = servable._last(tf.ragged.constant(rows, dtype=tf.string), n).to_list()  # noqa: SLF001
        assert [[v.decode() for v in row] for row in got] == [row[-n:] if row else [] for row in rows]


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
