"""Warm start of the ranker: a new ranker begins from the weights of the one being served.

The ranker reads the retrieval model's embeddings, so its weights mean something only in the
embedding space they were trained in. It therefore starts warm exactly when the retrieval model
it ranks for did: the retrieval trainer hands the served ranker's state on beside its own
(``models.warm_states.SERVED_RANKER``, in the retrieval model's and then the index's
``warm_start/{holdout,deployed}/``)
only when its own start was warm; a retrieval model trained from scratch gets a ranker trained
from scratch.

A state is the ranker's variables in their tracking order (``Ranker.variables``: the scalar
standardisation, the cross layers, the ReLU tower), as ``ranker.npz``. The standardisation's
mean and variance are not carried: they are learned again from this run's lists (counts such as
popularity grow with the window, so the served statistics would shift every input), and the
carried weights then see inputs on the scale they were trained on. A ranker of other settings
(layer sizes, cross layers, embedding size) starts cold, and the reason names the weight.
"""

from __future__ import annotations

import io
import os
from typing import List, Optional

import numpy as np
import tensorflow as tf

from models.warm_states import RANKER as STATE


def save(ranker, folder: str) -> None:
    """Writes ``ranker``'s variables to ``folder``/ranker.npz."""
    tf.io.gfile.makedirs(folder)
    buffer = io.BytesIO()  # a zip needs a seekable file; object stores' files are not
    np.savez(buffer, *[variable.numpy() for variable in ranker.variables])
    with tf.io.gfile.GFile(os.path.join(folder, STATE), "wb") as f:
        f.write(buffer.getvalue())


def load(path: str) -> Optional[List[np.ndarray]]:
    """The arrays of the state file ``path`` in the ranker's variable order, or None."""
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        loaded = np.load(io.BytesIO(f.read()))
        return [loaded[f"arr_{n}"] for n in range(len(loaded.files))]


def mismatch(arrays: List[np.ndarray], ranker) -> Optional[str]:
    """Why ``arrays`` cannot start ``ranker`` (a built one), or None."""
    variables = ranker.variables
    if len(arrays) != len(variables):
        return (f"the served ranker has {len(arrays)} weights, this one {len(variables)} "
                f"(other ranking settings)")
    for n, (old, variable) in enumerate(zip(arrays, variables)):
        if tuple(old.shape) != tuple(variable.shape):
            return (f"the served ranker's weight {n} ({variable.name}) is {list(old.shape)}, this "
                    f"ranker's {list(variable.shape)} (other ranking or retrieval settings)")
    return None


def apply(arrays: List[np.ndarray], ranker) -> None:
    """Assigns the served weights to ``ranker`` (``mismatch`` is None), all but its
    standardisation's statistics, which stay as ``Ranker.adapt`` set them."""
    kept = {id(v) for v in ranker.normalize.variables}
    for old, variable in zip(arrays, ranker.variables):
        if id(variable) not in kept:
            variable.assign(old.astype(variable.dtype.as_numpy_dtype))
