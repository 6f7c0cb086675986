"""The serving directory's versions: a push that never leaves a half-written version, pruning,
rollback.

TF Serving serves the highest all-digits folder under a model's base
directory and does not check that it is complete. So a new version is written
under a name it ignores (``incoming-<id>``) and renamed to the next integer
when complete; on object stores, where a rename is a copy, it is written in
place with ``saved_model.pb`` last (TF Serving's own readiness marker). A
folder left by a killed push (``incoming-*``, or a numbered one without
``saved_model.pb`` from an older pusher) is removed by the next push. Pushes
into one base directory are serialized (recommender/push_lock.py): a push
never removes another's live copy, and two pushes never take one number.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import List, Optional

import tensorflow as tf

from recommender import push_lock

INCOMING = "incoming-"
MARKER = "saved_model.pb"


class ServingDirError(RuntimeError):
    """The serving directory could not be read: nothing can be said of what it serves."""


def _names(base: str) -> List[str]:
    """The entries of ``base``; [] only when it does not exist. Any other error (no
    credentials, no such bucket, a file system this TensorFlow cannot read) is raised: taking
    it for "nothing is served" would skip the served-model gates and push over a model that
    is served. (``tf.io.gfile.isdir`` and ``listdir`` report every error as absence;
    ``exists`` raises all but NotFound.)"""
    try:
        if not tf.io.gfile.exists(base):
            return []
        return [n.strip("/") for n in tf.io.gfile.listdir(base)]
    except tf.errors.OpError as e:
        first = (e.message or str(e)).splitlines()[0][:300]
        raise ServingDirError(
            f"cannot read the serving directory {base}: {type(e).__name__}: {first}. Nothing "
            f"is compared or pushed while it cannot be read; check the path and the "
            f"credentials of whoever runs this (the pod's service account on Kubeflow).") from None


def _complete(path: str) -> bool:
    return tf.io.gfile.exists(os.path.join(path, MARKER))


def versions(base: str) -> List[int]:
    """The complete numbered versions under ``base``, oldest first."""
    return sorted(int(n) for n in _names(base) if n.isdigit() and _complete(os.path.join(base, n)))


def latest(base: str) -> Optional[str]:
    """The path of the version TF Serving serves (the highest complete one), or None."""
    found = versions(base)
    return os.path.join(base, str(found[-1])) if found else None


def _copy(source: str, target: str, before_marker=None) -> None:
    """Copies a SavedModel folder, ``saved_model.pb`` last (``before_marker()`` called first)."""
    files = []
    for folder, _, names in tf.io.gfile.walk(source):
        files += [os.path.join(folder, name) for name in names]
    files.sort(key=lambda path: os.path.relpath(path, source) == MARKER)
    for path in files:
        if before_marker is not None and os.path.relpath(path, source) == MARKER:
            before_marker()
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
      push_lock.PushBusyError: another push held ``base`` for longer than a push waits.
    """
    if not _complete(model_dir):
        raise FileNotFoundError(f"{model_dir} holds no {MARKER}: not a SavedModel to push")
    with push_lock.held(base) as hold:
        tf.io.gfile.makedirs(base)
        # Held: a leftover's push is gone (a live one would hold the lock).
        _remove_leftovers(base)
        # Leftovers are gone: every numbered folder is a complete version.
        target = os.path.join(base, str(max(versions(base), default=0) + 1))
        if "://" in base:
            _copy(model_dir, target, before_marker=hold.check)
        else:
            incoming = os.path.join(base, f"{INCOMING}{uuid.uuid4().hex}")
            try:
                _copy(model_dir, incoming)
            except BaseException:  # a failed or interrupted copy removes itself (a kill cannot)
                if tf.io.gfile.exists(incoming):
                    tf.io.gfile.rmtree(incoming)
                raise
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
