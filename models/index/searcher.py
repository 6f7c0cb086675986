"""Top-k search over item embeddings by dot product: exact (plain TF ops) or ScaNN.

Both searchers are ``tf.Module``s with one method, ``search(queries, k)``, that
runs eagerly (the benchmark and the index evaluation call it from Python) and
inside the servable's traced signatures. The exact searcher uses only stock
TensorFlow ops, so a SavedModel holding it loads in stock TF Serving and in a
process that never imported ``scann``; the ScaNN searcher needs ScaNN's op
library in the server.

``resolve`` turns the typed ``IndexConfig`` into concrete settings for a
catalogue size: ScaNN's guidance (brute force below ~20k points; about
sqrt(n) leaves; asymmetric hashing with 2 dimensions per block and anisotropic
quantisation; exact re-ordering of the approximate results) unless a knob is set.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Tuple

import numpy as np
import tensorflow as tf

EXACT, SCANN = "exact", "scann"
# ScaNN's asymmetric hashing trains 16 centres per block.
MIN_SCANN_ITEMS = 16


@dataclasses.dataclass(frozen=True)
class Settings:
    """Concrete search settings for one catalogue (recorded with the index)."""

    flavour: str
    num_leaves: int = 0
    num_leaves_to_search: int = 0
    training_sample_size: int = 0
    dimensions_per_block: int = 0
    anisotropic_quantization_threshold: float = 0.0
    reordering_candidates: int = 0
    # num_leaves_to_search and reordering_candidates are starting points, tuned against
    # exact search on sample queries (evaluation.tune_search).
    tune_leaves_to_search: bool = False
    tune_reordering: bool = False

    def describe(self) -> str:
        if self.flavour == EXACT:
            return "exact (dot product with every item, top-k)"
        tuned = " (tuned)" if self.tune_leaves_to_search else ""
        tree = (f"tree {self.num_leaves} leaves, {self.num_leaves_to_search} searched{tuned}, "
                if self.num_leaves > 1 else "")
        tuned_reorder = " (tuned)" if self.tune_reordering else ""
        reorder = (f", {self.reordering_candidates} re-ordered exactly{tuned_reorder}"
                   if self.reordering_candidates else ", no re-ordering")
        return (f"scann ({tree}asymmetric hashing {self.dimensions_per_block} dims/block, "
                f"anisotropic threshold {self.anisotropic_quantization_threshold}{reorder})")


def choose_flavour(flavour: str, num_items: int, brute_force_below: int) -> str:
    """'auto' -> exact below ``brute_force_below`` items (ScaNN's guidance), else scann."""
    if flavour not in ("auto", EXACT, SCANN):
        raise ValueError(f"index flavour must be 'auto', '{EXACT}' or '{SCANN}', got '{flavour}'")
    if flavour != "auto":
        return flavour
    return EXACT if num_items < brute_force_below else SCANN


def resolve(config, num_items: int, k: int) -> Settings:
    """Concrete settings of ``config`` (an IndexConfig) for ``num_items`` items and lists of ``k``.

    Raises:
      ValueError: ScaNN was asked for on fewer than MIN_SCANN_ITEMS items.
    """
    flavour = choose_flavour(config.flavour, num_items, config.brute_force_below)
    if flavour == EXACT:
        return Settings(EXACT)
    if num_items < MIN_SCANN_ITEMS:
        raise ValueError(f"index.flavour 'scann' needs at least {MIN_SCANN_ITEMS} items, the "
                         f"catalogue has {num_items}: use index.flavour 'exact' or 'auto'")
    leaves = config.num_leaves or max(1, round(math.sqrt(num_items)))
    leaves = min(leaves, num_items)
    to_search = config.num_leaves_to_search or max(1, math.ceil(leaves / 20))
    reorder = (config.reordering_candidates if config.reordering_candidates is not None
               else max(100, 4 * k))
    return Settings(
        flavour=SCANN, num_leaves=leaves, num_leaves_to_search=min(to_search, leaves),
        training_sample_size=min(config.training_sample_size, num_items),
        dimensions_per_block=config.dimensions_per_block,
        anisotropic_quantization_threshold=config.anisotropic_quantization_threshold,
        reordering_candidates=min(reorder, num_items),
        tune_leaves_to_search=config.num_leaves_to_search is None and leaves > 1,
        tune_reordering=config.reordering_candidates is None)


class ExactSearch(tf.Module):
    """Scores every item: matmul + top_k."""

    def __init__(self, embeddings):
        super().__init__()
        # A servable passes its own item-embedding variable: one copy, saved once.
        self.embeddings = (embeddings if isinstance(embeddings, tf.Variable) else
                           tf.Variable(np.asarray(embeddings, np.float32), trainable=False))

    def search(self, queries: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
        """queries float32 [b, dim] -> (scores [b, k], positions int32 [b, k]), best first."""
        scores = tf.matmul(queries, self.embeddings, transpose_b=True)
        return tf.math.top_k(scores, k=k)

    def size_bytes(self) -> int:
        return int(np.prod(self.embeddings.shape)) * 4


def _scann_ops():
    try:
        from scann.scann_ops.py import scann_ops
    except ImportError as e:  # pragma: no cover - scann is in the pinned stack
        raise ImportError("The 'scann' index flavour needs the scann package "
                          "(pip install scann==1.3.2), or set index.flavour to 'exact'.") from e
    return scann_ops


def configure(builder, settings: Settings):
    """Applies ``settings`` to a ScaNN builder (TensorFlow ops' or the Python binding's)."""
    if settings.num_leaves > 1:
        builder = builder.tree(num_leaves=settings.num_leaves,
                               num_leaves_to_search=settings.num_leaves_to_search,
                               training_sample_size=settings.training_sample_size)
    builder = builder.score_ah(
        settings.dimensions_per_block,
        anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold,
        training_sample_size=settings.training_sample_size)
    if settings.reordering_candidates:
        builder = builder.reorder(settings.reordering_candidates)
    return builder


class ScannSearch(tf.Module):
    """A ScaNN searcher whose state is saved with the module.

    Eager calls reuse the searcher built here; traced calls (the servable's
    signatures, also after reloading) recreate its handle from the saved state,
    as TF Serving does.
    """

    def __init__(self, embeddings: np.ndarray, settings: Settings, k: int):
        super().__init__()
        scann_ops = _scann_ops()
        embeddings = np.ascontiguousarray(embeddings, np.float32)
        builder = configure(scann_ops.builder(embeddings, k, "dot_product"), settings)
        searcher = builder.build(shared_name=f"scann-{uuid.uuid4()}")
        self.state = searcher.serialize_to_module()
        self._eager_searcher = searcher  # not a variable: not saved
        self.num_leaves = max(settings.num_leaves, 1)
        # Query-time breadth, constants of the traced signatures: set them (see
        # evaluation.tune_search) before the servable is saved.
        self.leaves_to_search = settings.num_leaves_to_search if settings.num_leaves > 1 else None
        self.reordering = settings.reordering_candidates or None

    def search(self, queries: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
        """queries float32 [b, dim] -> (scores [b, k], positions int32 [b, k]), best first;
        fewer than k results found: the rest are position -1, score -inf."""
        eager = tf.executing_eagerly()
        searcher = self._eager_searcher if eager else _scann_ops().searcher_from_module(self.state)
        result = searcher.search_batched_parallel(queries, final_num_neighbors=k,
                                                  pre_reorder_num_neighbors=self.reordering,
                                                  leaves_to_search=self.leaves_to_search)
        scores, positions = result.distances, result.indices
        if eager and scores.shape[1] == k and not np.isnan(scores.numpy()).any():
            return scores, positions  # the usual case, without the extra ops below
        # When the searched leaves hold fewer than k items ScaNN returns fewer columns
        # (the batch's most) and pads rows with NaN scores: missing results become
        # position -1 with score -inf, and every answer has k columns.
        missing = tf.math.is_nan(scores)
        pad = [[0, 0], [0, k - tf.shape(positions)[1]]]
        return (tf.pad(tf.where(missing, -np.inf, scores), pad, constant_values=-np.inf),
                tf.pad(tf.where(missing, -1, positions), pad, constant_values=-1))

    def size_bytes(self) -> int:
        return int(sum(np.prod(v.shape) * v.dtype.size for v in self.state.variables))


def build(embeddings, settings: Settings, k: int):
    """The searcher of ``settings`` over ``embeddings`` [n, dim] float32 (array or tf.Variable).

    Args:
      k: the usual number of results (ScaNN sizes its re-ordering by it).
    """
    if settings.flavour == EXACT:
        return ExactSearch(embeddings)
    if isinstance(embeddings, tf.Variable):
        embeddings = embeddings.numpy()
    return ScannSearch(embeddings, settings, k)
