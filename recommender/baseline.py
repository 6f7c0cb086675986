"""The served model as the evaluators' baseline, found in the serving directory itself.

The usual TFX baseline (a Resolver for the latest blessed model) does not run on
open-source Kubeflow Pipelines v2, and a served version is what users compare
with anyway. A pushed version is the deployed recommender: it learned from every
interaction its run was given, including that run's eval split, so scoring it on
held-out interactions would not be fair (it also drops them from its lists as
already seen). Each version therefore names, in ``assets.extra/`` (which TF
Serving does not read), its holdout twin: the same recommender built from the
train split only, in the run's pipeline root. The baseline is that twin, when it
still exists and did not learn from this run's eval interactions.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, NamedTuple, Optional, Sequence, Set

import numpy as np
import tensorflow as tf

from models import arrays
from recommender import versions

PROVENANCE = os.path.join("assets.extra", "recsys_model.json")
# A twin that learned from more than this share of the eval interactions is no baseline.
MAX_OVERLAP = 0.01


def write_provenance(export_dir: str, holdout_dir: str) -> None:
    """Records in a recommender export where its holdout twin is."""
    path = os.path.join(export_dir, PROVENANCE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump({"holdout_model": holdout_dir}, f)


class Served(NamedTuple):
    """The served version and its usable twin (None, with ``reason``, when there is none)."""

    version: Optional[str]
    twin: Optional[str]
    reason: str


def find(base: str) -> Served:
    """The served version under ``base`` and its holdout twin, or why there is none."""
    latest = versions.latest(base)
    if latest is None:
        return Served(None, None, f"nothing is served yet under {base}")
    version = latest.rstrip("/").rsplit("/", 1)[-1]
    path = os.path.join(latest, PROVENANCE)
    if not tf.io.gfile.exists(path):
        return Served(version, None, f"served version {version} does not name its holdout twin "
                                     f"({PROVENANCE}; pushed by an older release)")
    with tf.io.gfile.GFile(path) as f:
        twin = json.load(f).get("holdout_model", "")
    if not tf.io.gfile.exists(os.path.join(twin, versions.MARKER)):
        return Served(version, None, f"the holdout twin of served version {version} ({twin}) "
                                     f"no longer exists")
    return Served(version, twin, f"served version {version}")


def learned_share(twin, eval_pairs: Mapping[str, Set[str]]) -> float:
    """Share of the eval (user, item) pairs that a loaded recommender's index learned from."""
    index = twin.index
    users = {u: r for r, u in enumerate(arrays.to_str(index.user_ids.numpy()))}
    items = arrays.to_str(index.item_ids.numpy())
    splits, seen = index.seen_row_splits.numpy(), index.seen_items.numpy()
    total = learned = 0
    for user, held in eval_pairs.items():
        total += len(held)
        row = users.get(user)
        if row is not None:
            known = {items[p] for p in seen[splits[row]:splits[row + 1]]}
            learned += len(held & known)
    return learned / total if total else 0.0


def check_twin(served: Served, eval_pairs: Mapping[str, Set[str]],
               signatures: Sequence[str]) -> Served:
    """``served`` if its twin serves ``signatures`` and did not learn from ``eval_pairs``."""
    if served.twin is None:
        return served
    twin = tf.saved_model.load(served.twin)
    missing = [s for s in signatures if s not in twin.signatures]
    if missing:
        return served._replace(twin=None, reason=f"served version {served.version} lacks the "
                                                 f"{missing} signatures (an older release)")
    share = learned_share(twin, eval_pairs)
    if share > MAX_OVERLAP:
        return served._replace(twin=None, reason=(
            f"the holdout twin of served version {served.version} learned from "
            f"{share:.1%} of this run's eval interactions: a comparison would favour it"))
    return served._replace(reason=f"served version {served.version} ({np.round(share * 100, 2)}% "
                                  f"of the eval interactions known to it)")
