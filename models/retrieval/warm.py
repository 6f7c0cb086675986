"""Warm start: a new two-tower model begins from the weights of the one being served.

Transform rebuilds the vocabularies every run, so an embedding row means a token, not a
position: rows are carried over by token. A known id keeps its row; a new id starts as the
old out-of-vocabulary row (what the served model answered for it, placed by its features);
an id gone from the data drops out. Rows before a vocabulary's first token (padding,
out-of-vocabulary) and every dense layer are copied as they are. A served model whose shapes
differ (other settings: embedding sizes, towers' inputs) cannot be carried over: the start is
cold, and the reason says which weight differs.

A state is written beside each trained model (``save``) as ``retrieval.npz`` (the arrays by
``TwoTowerModel.warm_slots`` name) and ``retrieval.json`` (the vocabularies' tokens, bytes
kept exact as latin-1 text); the recommender export carries the deployed model's and its
holdout twin's states in ``assets.extra/warm_start/`` (which TF Serving does not read), so a
pushed version is all a later run needs. ``carry`` copies the states from one artifact to the
next (retrieval model -> index -> recommender).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from models import features
from models.warm_states import RETRIEVAL_FILES

STATE, TOKENS = RETRIEVAL_FILES


def _tokens(tft_output, name: str) -> List[bytes]:
    return [t if isinstance(t, bytes) else str(t).encode("utf-8")
            for t in tft_output.vocabulary_by_name(name)]


def save(model, tft_output, folder: str) -> None:
    """Writes ``model``'s state (its towers' arrays and the vocabularies its rows follow)."""
    tf.io.gfile.makedirs(folder)
    arrays = {name: variable.numpy() for name, (variable, _, _) in model.warm_slots().items()}
    buffer = io.BytesIO()  # a zip needs a seekable file; object stores' files are not
    np.savez(buffer, **arrays)
    with tf.io.gfile.GFile(os.path.join(folder, STATE), "wb") as f:
        f.write(buffer.getvalue())
    vocabularies = {name: [t.decode("latin-1") for t in _tokens(tft_output, name)]
                    for name in features.VOCABS}
    with tf.io.gfile.GFile(os.path.join(folder, TOKENS), "w") as f:
        json.dump(vocabularies, f)


@dataclasses.dataclass
class Plan:
    """How a served state maps onto this run's vocabularies.

    Attributes:
      arrays: the served arrays by slot name.
      rows: per vocabulary, int64 [new vocabulary size]: each new token's row in the served
        array's token part (-1: new token).
      carried: bool [vocabulary + 1] of the user and item vocabularies: rows that start from
        a trained served row (the model reads them as known ids).
      counts: per vocabulary, tokens kept, new and gone.
    """

    arrays: Dict[str, np.ndarray]
    rows: Dict[str, np.ndarray]
    carried: Dict[str, np.ndarray]
    counts: Dict[str, Dict[str, int]]


def plan(folder: str, tft_output) -> Optional[Plan]:
    """The served state in ``folder`` mapped onto this run's vocabularies; None without one."""
    if not (tf.io.gfile.exists(os.path.join(folder, STATE))
            and tf.io.gfile.exists(os.path.join(folder, TOKENS))):
        return None
    with tf.io.gfile.GFile(os.path.join(folder, STATE), "rb") as f:
        loaded = np.load(io.BytesIO(f.read()))
        arrays = {name: loaded[name] for name in loaded.files}
    with tf.io.gfile.GFile(os.path.join(folder, TOKENS)) as f:
        served = json.load(f)
    rows, carried, counts = {}, {}, {}
    for name in features.VOCABS:
        old = {token.encode("latin-1"): k for k, token in enumerate(served.get(name, []))}
        new = _tokens(tft_output, name)
        rows[name] = np.array([old.get(token, -1) for token in new], np.int64)
        kept = int((rows[name] >= 0).sum())
        counts[name] = {"kept": kept, "new": len(new) - kept, "gone": len(old) - kept}
        carried[name] = np.concatenate([[False], rows[name] >= 0])  # row 0: out-of-vocabulary
    return Plan(arrays, rows, carried, counts)


def mismatch(warm: Plan, model) -> Optional[str]:
    """Why ``warm`` cannot start ``model`` (a weight of another shape, or missing), or None."""
    for name, (variable, vocabulary, _) in model.warm_slots().items():
        old = warm.arrays.get(name)
        if old is None:
            return f"the served model has no weight {name!r} (other retrieval settings)"
        want = tuple(variable.shape)
        if vocabulary is None and old.shape != want or vocabulary and old.shape[1:] != want[1:]:
            return (f"the served model's {name!r} weight is {list(old.shape)}, this model's "
                    f"{list(want)} (other retrieval settings)")
    return None


def apply(warm: Plan, model) -> None:
    """Assigns the served weights to ``model``'s variables, rows by token (``mismatch`` is None)."""
    for name, (variable, vocabulary, offset) in model.warm_slots().items():
        old = warm.arrays[name]
        if vocabulary is None:
            variable.assign(old)
            continue
        rows = warm.rows[vocabulary]
        oov = old[offset - 1]  # the out-of-vocabulary row: what the served model gave new ids
        at = np.minimum(offset + np.maximum(rows, 0), len(old) - 1)
        tokens = np.where(rows[:, None] >= 0, old[at], oov[None, :])
        value = np.concatenate([old[:offset], tokens]).astype(variable.dtype.as_numpy_dtype)
        variable.assign(value[:variable.shape[0]])
