"""The serving directory's versions: a push that never leaves a half-written version, pruning,
rollback.

TF Serving serves the highest all-digits folder under a model's base
directory and does not check that it is complete. So a new version is written
under a name it ignores (``incoming-<id>``) and renamed to the next integer
when complete; on object stores, where a rename is a copy, it is written in
place with ``saved_model.pb`` last (TF Serving's own readiness marker). A
folder left by a killed push (``incoming-*``, or a numbered one without
``saved_model.pb`` from an older pusher) is removed by the next push. One
pusher writes to a base directory at a time.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import List, Optional

import tensorflow as tf

INCOMING = "incoming-"
MARKER = "saved_model.pb"


def _names(base: str) -> List[str]:
    return [n.strip("/") for n in tf.io.gfile.listdir(base)] if tf.io.gfile.isdir(base) else []


def _complete(path: str) -> bool:
    return tf.io.gfile.exists(os.path.join(path, MARKER))


def versions(base: str) -> List[int]:
    """The complete numbered versions under ``base``, oldest first."""
    return sorted(int(n) for n in _names(base) if n.isdigit() and _complete(os.path.join(base, n)))


def latest(base: str) -> Optional[str]:
    """The path of the version TF Serving serves (the highest complete one), or None."""
    found = versions(base)
    return os.path.join(base, str(found[-1])) if found else None


def _copy(source: str, target: str) -> None:
    """Copies a SavedModel folder, ``saved_model.pb`` last."""
    files = []
    for folder, _, names in tf.io.gfile.walk(source):
        files += [os.path.join(folder, name) for name in names]
    files.sort(key=lambda path: os.path.relpath(path, source) == MARKER)
    for path in files:
        destination = os.path.join(target, os.path.relpath(path, source))
        tf.io.gfile.makedirs(os.path.dirname(destination))
        tf.io.gfile.copy(path, destination, overwrite=True)


def _remove_leftovers(base: str) -> None:
    for name in _names(base):
        path = os.path.join(base, name)
        if name.startswith(INCOMING) or (name.isdigit() and not _complete(path)):
            logging.warning("Removing %s, left by a push that did not finish", path)
            tf.io.gfile.rmtree(path)


def push(model_dir: str, base: str, keep: int = 0) -> str:
    """Publishes the SavedModel ``model_dir`` as the next version under ``base``.

    Args:
      model_dir: a complete SavedModel folder.
      base: the model's base directory (TF Serving's ``base_path``).
      keep: complete versions to keep, the new one included (0: all).

    Returns:
      The new version's path.

    Raises:
      FileNotFoundError: ``model_dir`` holds no ``saved_model.pb``.
    """
    if not _complete(model_dir):
        raise FileNotFoundError(f"{model_dir} holds no {MARKER}: not a SavedModel to push")
    tf.io.gfile.makedirs(base)
    _remove_leftovers(base)
    # Leftovers are gone: every numbered folder is a complete version.
    target = os.path.join(base, str(max(versions(base), default=0) + 1))
    if "://" in base:
        _copy(model_dir, target)
    else:
        incoming = os.path.join(base, f"{INCOMING}{uuid.uuid4().hex}")
        _copy(model_dir, incoming)
        os.rename(incoming, target)  # atomic on POSIX: TF Serving sees all of it or nothing
    if keep > 0:
        for old in versions(base)[:-keep]:
            tf.io.gfile.rmtree(os.path.join(base, str(old)))
    logging.info("Pushed %s as %s", model_dir, target)
    return target


def rollback(base: str, to: Optional[int] = None) -> str:
    """Serves an older version again, by publishing a copy of it as the newest.

    Args:
      base: the model's base directory.
      to: the version to serve; None: the one before the newest.

    Returns:
      The new version's path.

    Raises:
      ValueError: no such version, or no older version to go back to.
    """
    found = versions(base)
    if to is None:
        if len(found) < 2:
            raise ValueError(f"no older version to roll back to under {base} (versions: {found})")
        to = found[-2]
    if to not in found:
        raise ValueError(f"version {to} is not under {base}; complete versions: {found}")
    return push(os.path.join(base, str(to)), base)
