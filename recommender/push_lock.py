"""One push at a time per serving directory: a kernel lock locally, a claim object on GCS.

A push removes what killed pushes left (``incoming-*`` folders, numbered
folders without ``saved_model.pb``) and numbers its version after the highest
one. Two pushes into one base directory at once (a scheduled run and a manual
one, two Kubeflow runs) would remove each other's live copies and take the
same number, so ``recommender.versions.push`` holds this lock from its first
look at the directory to its last write:

* Local paths: ``fcntl.flock`` on ``<base>/.push.lock``. The kernel drops the
  lock when its process dies, however it dies, so a folder found while holding
  it was left by a push that is gone.
* ``gs://``: an object ``<base>/.push.claim`` created with
  ``ifGenerationMatch=0`` (it succeeds for exactly one of two pushes), holding
  its owner and an expiry. A claim past its expiry (its push was killed) is
  deleted with its own generation as precondition, so two pushes cannot both
  take it over. Before the version's ``saved_model.pb`` is written the push
  checks that its claim is still the one stored, so a push that outlived its
  lease never publishes.
* Other object stores (s3://, hdfs://, ...) have no claim here: a push there is
  refused rather than run unserialized.

TF Serving ignores both files: it serves only all-digit folder names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from typing import Iterator, Optional, Tuple

LOCK_NAME = ".push.lock"
CLAIM_NAME = ".push.claim"
# How long a push waits for another one to finish (copying a SavedModel takes seconds; a
# lock held longer than this is a stuck push, named in the error).
WAIT_S = 300.0
# How long a GCS claim stands without its push finishing (longer than any copy).
LEASE_S = 900.0
_POLL_S = 0.05


class PushBusyError(RuntimeError):
    """Another push holds the serving directory for longer than a push waits."""


def owner() -> dict:
    """Who holds a lock: host, process and since when (for the error of the one waiting)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}


def _describe(holder: Optional[dict]) -> str:
    if not holder:
        return "another push"
    since = time.strftime("%H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"the push of process {holder.get('pid')} on {holder.get('host')} (since {since})"


class _Held:
    """What a push holds; ``check()`` raises PushBusyError when the hold was lost."""

    def check(self) -> None:
        pass


@contextlib.contextmanager
def _local(base: str, wait_s: float) -> Iterator[_Held]:
    import fcntl

    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PushBusyError(
                        f"{base}: {_describe(_read_local(path))} still holds {path} after "
                        f"{wait_s:.0f} s; push again when it has finished (nothing was written)."
                    ) from None
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner()).encode("utf-8"))
        yield _Held()
    finally:
        os.close(fd)  # closing releases the flock


def _read_local(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None


class ClaimStore:
    """The three atomic operations a claim needs from an object store (GCS's preconditions)."""

    def create(self, path: str, data: bytes) -> Optional[int]:
        """Writes ``path`` only if it does not exist; its generation, or None if it exists."""
        raise NotImplementedError

    def read(self, path: str) -> Optional[Tuple[bytes, int]]:
        """(data, generation) of ``path``, or None if it does not exist."""
        raise NotImplementedError

    def delete(self, path: str, generation: int) -> bool:
        """Deletes ``path`` only if its generation is ``generation``; whether it did."""
        raise NotImplementedError


class GcsStore(ClaimStore):
    """``ClaimStore`` on Google Cloud Storage (google-cloud-storage, installed with Beam's gcp extra)."""

    def __init__(self):
        from google.cloud import storage

        self._client = storage.Client()

    def _blob(self, path: str):
        bucket, _, name = path[len("gs://"):].partition("/")
        return self._client.bucket(bucket).blob(name)

    def create(self, path, data):
        from google.api_core import exceptions

        blob = self._blob(path)
        try:
            blob.upload_from_string(data, if_generation_match=0)
        except exceptions.PreconditionFailed:
            return None
        return int(blob.generation)

    def read(self, path):
        from google.api_core import exceptions

        blob = self._blob(path)
        try:
            data = blob.download_as_bytes()
        except exceptions.NotFound:
            return None
        return data, int(blob.generation)

    def delete(self, path, generation):
        from google.api_core import exceptions

        try:
            self._blob(path).delete(if_generation_match=generation)
        except (exceptions.PreconditionFailed, exceptions.NotFound):
            return False
        return True


@dataclasses.dataclass
class _Claim(_Held):
    store: ClaimStore
    path: str
    generation: int

    def check(self) -> None:
        found = self.store.read(self.path)
        if found is None or found[1] != self.generation:
            raise PushBusyError(f"{self.path}: this push's claim expired and was taken over by "
                           f"another push before the version was complete; nothing was published.")


@contextlib.contextmanager
def claimed(store: ClaimStore, base: str, wait_s: Optional[float] = None,
            lease_s: Optional[float] = None) -> Iterator[_Held]:
    """Holds ``<base>/.push.claim`` on ``store`` (see the module docstring)."""
    wait_s = WAIT_S if wait_s is None else wait_s
    lease_s = LEASE_S if lease_s is None else lease_s
    path = base.rstrip("/") + "/" + CLAIM_NAME
    deadline = time.monotonic() + wait_s
    while True:
        mine = {**owner(), "expires": time.time() + lease_s}
        generation = store.create(path, json.dumps(mine).encode("utf-8"))
        if generation is not None:
            break
        found = store.read(path)
        if found is None:
            continue  # released between our create and read
        try:
            holder = json.loads(found[0].decode("utf-8"))
        except ValueError:
            holder = {}
        if float(holder.get("expires", 0)) < time.time():
            store.delete(path, found[1])  # only this generation: one taker-over wins
            continue
        if time.monotonic() >= deadline:
            raise PushBusyError(f"{base}: {_describe(holder)} still holds {path} after {wait_s:.0f} s "
                           f"(its claim expires in {holder['expires'] - time.time():.0f} s); push "
                           f"again when it has finished (nothing was written).")
        time.sleep(_POLL_S * 10)
    claim = _Claim(store, path, generation)
    try:
        yield claim
    finally:
        store.delete(path, generation)


@contextlib.contextmanager
def held(base: str, wait_s: Optional[float] = None) -> Iterator[_Held]:
    """The push lock of base directory ``base`` for the ``with`` block (``wait_s``: how long to
    wait for another push; None: WAIT_S).

    Raises:
      PushBusyError: another push held it for ``wait_s`` seconds.
      ValueError: ``base`` is on an object store without a claim (not local, not gs://).
    """
    wait_s = WAIT_S if wait_s is None else wait_s
    scheme = base.split("://", 1)[0] if "://" in base else ""
    if not scheme:
        with _local(base, wait_s) as hold:
            yield hold
    elif scheme == "gs":
        with claimed(GcsStore(), base, wait_s) as hold:
            yield hold
    else:
        raise ValueError(f"{base}: pushes to {scheme}:// cannot be serialized (a local path or "
                         f"gs:// can); push to one of those, or to a local disk that TF Serving "
                         f"reads.")
