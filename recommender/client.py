"""Loading the newest pushed model and asking it for a list (``recsys recommend``)."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from recommender import remote, signatures, versions


def latest_version(push_dir: str) -> str:
    """Path of the highest complete integer version under ``push_dir`` (what TF Serving serves;
    a folder without ``saved_model.pb`` is skipped).

    Raises:
      FileNotFoundError: no version has been pushed there.
    """
    path = versions.latest(push_dir)
    if path is None:
        raise FileNotFoundError(f"no pushed model under {push_dir}; run `recsys run` first.")
    return path


def reason(message: str) -> str:
    """The first line of a TensorFlow error that says what is wrong (an assertion's text)."""
    found = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if found:
        return found.group(1)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in lines if "expected" in line or "must" in line), lines[-1] if lines else "")


class LocalModel:
    """A SavedModel on disk answering ``predict(signature, inputs)`` as a server would."""

    def __init__(self, model_dir: str):
        self.model = tf.saved_model.load(model_dir)

    def predict(self, signature: str, inputs: Dict[str, list]) -> Dict[str, np.ndarray]:
        """Outputs of ``signature``; a request the model rejects raises ValueError with its reason."""
        try:
            out = self.model.signatures[signature](**{
                name: tf.constant(values, signatures.input_dtype(name))
                for name, values in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(f"the model rejected the request to '{signature}': "
                             f"{reason(e.message)}") from e
        return {name: value.numpy() for name, value in out.items()}


def recommend(model_dir: str, user_id: str, history: Optional[Sequence[str]] = None, age: int = 0,
              gender: str = "", occupation: str = "", exclude: Optional[Sequence[str]] = None,
              k: Optional[int] = None, log: Optional[str] = None) -> List[Tuple[str, str, float]]:
    """(item_id, title, score) of one user's list, best first.

    With no context, via ``serving_default``; with a recent history (item ids,
    oldest first), demographics, exclusions or k, via ``recommend_with_context``, which
    personalises for users the model has never seen: the same requests a
    running TF Serving gets from ``remote.recommend`` (``log``: appended to that request log).
    """
    return remote.recommend(LocalModel(model_dir), user_id, history, age, gender, occupation,
                            exclude, k, log)
