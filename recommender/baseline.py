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
from typing import Mapping, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from models import arrays
from recommender import versions

PROVENANCE = os.path.join("assets.extra", "recsys_model.json")
# The warm-start states a recommender export carries (models/retrieval/warm.py).
WARM_START = os.path.join("assets.extra", "warm_start")
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
    path: Optional[str] = None  # the served version's folder


def find(base: str) -> Served:
    """The served version under ``base`` and its holdout twin, or why there is none."""
    latest = versions.latest(base)
    if latest is None:
        return Served(None, None, f"nothing is served yet under {base}")
    version = latest.rstrip("/").rsplit("/", 1)[-1]
    path = os.path.join(latest, PROVENANCE)
    if not tf.io.gfile.exists(path):
        return Served(version, None, f"served version {version} does not name its holdout twin "
                                     f"({PROVENANCE}; pushed by an older release)", latest)
    with tf.io.gfile.GFile(path) as f:
        twin = json.load(f).get("holdout_model", "")
    if not tf.io.gfile.exists(os.path.join(twin, versions.MARKER)):
        return Served(version, None, f"the holdout twin of served version {version} ({twin}) "
                                     f"no longer exists", latest)
    return Served(version, twin, f"served version {version}", latest)


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


LEARNED_FROM = "learned_from.json"
# The statistics of the data a recommender export learned from (StatisticsGen's layout:
# Split-<name>/FeatureStats.pb), for the next run's drift check.
STATISTICS = os.path.join("assets.extra", "statistics")


def carry(source: str, target: str, names: Optional[Sequence[str]] = None) -> bool:
    """Copies the files under ``source`` (those named ``names``, when given) to the same places
    under ``target``, keeping what ``target`` holds already; False when none was copied. How a
    run's warm-start states and statistics travel from artifact to artifact into a push."""
    if not tf.io.gfile.isdir(source):
        return False
    copied = False
    for folder, _, files in tf.io.gfile.walk(source):
        place = os.path.join(target, os.path.relpath(folder, source))
        for name in files:
            if names is None or name in names:
                tf.io.gfile.makedirs(place)
                tf.io.gfile.copy(os.path.join(folder, name), os.path.join(place, name), overwrite=True)
                copied = True
    return copied


def statistics_dir(served: Served) -> Optional[str]:
    """The served version's statistics (carried into its ``STATISTICS``), or None."""
    if served.path is None:
        return None
    folder = os.path.join(served.path, STATISTICS)
    return folder if tf.io.gfile.isdir(folder) else None
_FINGERPRINT = "input_fingerprint"


def _data_identity(examples) -> dict:
    """The interactions Examples artifact as a run sees it: its URI and ExampleGen's fingerprint
    of the input files (absent where no ExampleGen driver ran, as on open-source Kubeflow)."""
    fingerprint = (examples.get_string_custom_property(_FINGERPRINT)
                   if examples.has_custom_property(_FINGERPRINT) else "")
    return {"examples": examples.uri, _FINGERPRINT: fingerprint}


def write_learned_from(export_dir: str, examples) -> None:
    """Records in a recommender export's warm-start states which data its models learned from."""
    path = os.path.join(export_dir, WARM_START, LEARNED_FROM)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(_data_identity(examples), f)


def warm_start(served: Served, examples) -> Tuple[Optional[str], str]:
    """(the served version's warm-start states or None, why). There are none to start from when
    its twin failed ``check_twin`` (the holdout model starts from the twin's weights), when the
    version carries none, or when it learned from this run's own data (``examples``): starting
    there would repeat that training, and a rerun with the cache (a rule change) would retrain."""
    if served.twin is None or served.path is None:
        return None, served.reason
    folder = os.path.join(served.path, WARM_START)
    if not tf.io.gfile.isdir(folder):
        return None, f"served version {served.version} carries no warm-start state (an older release)"
    learned = os.path.join(folder, LEARNED_FROM)
    if tf.io.gfile.exists(learned):
        with tf.io.gfile.GFile(learned) as f:
            before = json.load(f)
        now = _data_identity(examples)
        if before.get("examples") == now["examples"] or (
                now[_FINGERPRINT] and before.get(_FINGERPRINT) == now[_FINGERPRINT]):
            return None, (f"served version {served.version} learned from this run's own data "
                          f"(same input files): a warm start would repeat its training")
    return folder, f"served version {served.version}"
