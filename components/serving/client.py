"""Loading the newest pushed model and asking it for a list (``recsys recommend``)."""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf

from components.serving import remote


def latest_version(push_dir: str) -> str:
    """Path of the highest integer version under ``push_dir`` (TF Serving's rule).

    Raises:
      FileNotFoundError: no version has been pushed there.
    """
    versions = [v for v in (tf.io.gfile.listdir(push_dir) if tf.io.gfile.isdir(push_dir) else [])
                if v.strip("/").isdigit()]
    if not versions:
        raise FileNotFoundError(f"no pushed model under {push_dir}; run `recsys run` first.")
    return os.path.join(push_dir, max(versions, key=lambda v: int(v.strip("/"))).strip("/"))


def recommend(model_dir: str, user_id: str, history: Optional[Sequence[str]] = None, age: int = 0,
              gender: str = "", occupation: str = "") -> List[Tuple[str, str, float]]:
    """(item_id, title, score) of one user's list, best first.

    With no context, via ``serving_default``; with a recent history (item ids,
    oldest first) or demographics, via ``recommend_with_context``, which
    personalises for users the model has never seen. The same request a
    running TF Serving gets from ``remote.recommend``.
    """
    signature, inputs = remote.request_inputs(user_id, history, age, gender, occupation)
    model = tf.saved_model.load(model_dir)
    out = model.signatures[signature](**{
        name: tf.constant(values, tf.int64 if name == "age" else tf.string)
        for name, values in inputs.items()})
    item_ids = out["item_ids"][0]
    titles = model.signatures["lookup_titles"](item_ids=item_ids)["titles"].numpy()
    return [(i.decode("utf-8"), t.decode("utf-8"), float(s))
            for i, t, s in zip(item_ids.numpy(), titles, out["scores"][0].numpy())]
