"""Level 1-2: publishing versions to the serving directory never leaves a half-written one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from cli import main as cli
from recommender import client, push_lock, versions


def _model(path, files=1, size=16, tag=b"m"):
    """A folder shaped like a SavedModel: variables, assets, saved_model.pb."""
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    for n in range(files):
        with open(os.path.join(path, "variables", f"shard-{n:04d}"), "wb") as f:
            f.write(tag * size)
    with open(os.path.join(path, versions.MARKER), "wb") as f:
        f.write(tag)
    return str(path)


def _listed(base):
    """The base directory's entries but the push lock file (which TF Serving ignores)."""
    return sorted(n for n in os.listdir(base) if n != push_lock.LOCK_NAME)


def test_pushes_take_the_next_integer_and_keep_the_newest(tmp_path):
    base = str(tmp_path / "serving" / "recommender")
    for n in range(1, 4):
        path = versions.push(_model(tmp_path / f"m{n}", tag=str(n).encode()), base, keep=2)
        assert path == os.path.join(base, str(n))
    assert versions.versions(base) == [2, 3] and _listed(base) == ["2", "3"]
    assert open(os.path.join(base, "3", versions.MARKER), "rb").read() == b"3"
    assert client.latest_version(base) == os.path.join(base, "3")


def test_leftovers_of_a_killed_push_are_never_served_and_are_removed(tmp_path):
    base = tmp_path / "recommender"
    versions.push(_model(tmp_path / "m1"), str(base))
    (base / "incoming-dead").mkdir()
    (base / "7" / "variables").mkdir(parents=True)  # an older pusher's half-written copy
    assert client.latest_version(str(base)) == str(base / "1")  # TF Serving's pick, complete only
    path = versions.push(_model(tmp_path / "m2"), str(base))
    assert path == str(base / "2") and _listed(base) == ["1", "2"]


def test_rollback_serves_an_earlier_version_again(tmp_path, capsys):
    serving = tmp_path / "serving"
    base = str(serving / "recommender")
    for n in (1, 2):
        versions.push(_model(tmp_path / f"m{n}", tag=str(n).encode()), base)
    assert cli.main(["rollback", "--serving-dir", str(serving)]) == 0
    assert "Version 1 is served again" in capsys.readouterr().out
    assert open(os.path.join(client.latest_version(base), versions.MARKER), "rb").read() == b"1"
    assert cli.main(["rollback", "--serving-dir", str(serving), "--to", "9"]) == 2
    assert "version 9 is not under" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="not a SavedModel"):
        versions.push(str(tmp_path), base)


@pytest.mark.slow
def test_a_push_killed_midway_leaves_only_complete_versions(tmp_path):
    """SIGKILL of the pushing process group while it copies: the served version stays the
    previous one, and the next push publishes a complete version over the leftovers."""
    base = tmp_path / "recommender"
    versions.push(_model(tmp_path / "old"), str(base))
    big = _model(tmp_path / "big", files=400, size=64 * 1024)
    script = f"from recommender import versions; versions.push({big!r}, {str(base)!r})"
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    incoming = []
    while time.time() < deadline and process.poll() is None:
        incoming = [n for n in os.listdir(base) if n.startswith(versions.INCOMING)]
        if incoming and os.path.isdir(base / incoming[0] / "variables") and os.listdir(
                base / incoming[0] / "variables"):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.0005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the push finished before it could be killed"
    names = os.listdir(base)
    assert any(n.startswith(versions.INCOMING) for n in names)  # killed mid-copy
    assert [n for n in names if n.isdigit()] == ["1"]  # nothing half-written is numbered
    assert client.latest_version(str(base)) == str(base / "1")
    path = versions.push(big, str(base))
    assert _listed(base) == ["1", "2"] and path == str(base / "2")
    assert len(os.listdir(base / "2" / "variables")) == 400


def _saved_model(path):
    """A real SavedModel (a variable of 256 KiB, one function) that ``tf.saved_model.load`` reads."""
    import numpy as np
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable(np.arange(65536, dtype=np.float32))
    module.total = tf.function(lambda: tf.reduce_sum(module.weights), input_signature=[])
    tf.saved_model.save(module, str(path))
    return str(path)


def _files(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return out


_PUSHER = """
import sys, time
from recommender import versions
model, base = sys.argv[1], sys.argv[2]
start, pushes, slot = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
for n in range(pushes):
    time.sleep(max(0.0, start + n * slot - time.time()))  # both processes push at these instants
    try:
        print("pushed", versions.push(model, base), flush=True)
    except Exception as e:
        print("failed", type(e).__name__, str(e).replace(chr(10), " | "), flush=True)
"""


@pytest.mark.slow
def test_two_processes_pushing_at_the_same_instants_leave_only_complete_versions(tmp_path):
    """Two processes x 15 pushes into one base directory, each pair at the same instant: every
    push succeeds (the second waits for the first), the numbers are 1..30, and every numbered
    version holds every file of the model and loads."""
    import tensorflow as tf

    model = _saved_model(tmp_path / "model")
    base = str(tmp_path / "serving" / "recommender")
    start = time.time() + 8.0  # after both processes have imported TensorFlow
    processes = [subprocess.Popen([sys.executable, "-c", _PUSHER, model, base, str(start), "15",
                                   "0.3"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True) for _ in range(2)]
    lines = [line for p in processes for line in p.communicate(timeout=240)[0].splitlines()]
    assert [p.returncode for p in processes] == [0, 0]
    assert len(lines) == 30 and all(line.startswith("pushed ") for line in lines), lines
    assert sorted(int(line.rsplit("/", 1)[1]) for line in lines) == list(range(1, 31))
    assert versions.versions(base) == list(range(1, 31)) and len(_listed(base)) == 30
    expected = _files(model)
    for version in versions.versions(base):
        path = os.path.join(base, str(version))
        assert _files(path) == expected, version
        assert float(tf.saved_model.load(path).total()) == float(sum(range(65536)))


def test_a_push_waiting_longer_than_its_limit_fails_with_one_line_naming_the_holder(tmp_path):
    base = tmp_path / "recommender"
    versions.push(_model(tmp_path / "m1"), str(base))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from recommender import push_lock\n"
        "with push_lock.held(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"), str(base)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(push_lock.PushBusyError) as caught:
            with push_lock.held(str(base), wait_s=0.5):
                pass
        message = str(caught.value)
        assert "\n" not in message and f"process {holder.pid}" in message
        assert "nothing was written" in message
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: the kernel released its lock, and the next push goes ahead.
    assert versions.push(_model(tmp_path / "m2"), str(base)).endswith("2")


class _MemoryStore(push_lock.ClaimStore):
    """GCS's preconditions in memory: create only if absent, delete only at a generation."""

    def __init__(self):
        import threading

        self._lock, self._objects, self._generation = threading.Lock(), {}, 0

    def create(self, path, data):
        with self._lock:
            if path in self._objects:
                return None
            self._generation += 1
            self._objects[path] = (data, self._generation)
            return self._generation

    def read(self, path):
        with self._lock:
            return self._objects.get(path)

    def delete(self, path, generation):
        with self._lock:
            if self._objects.get(path, (None, None))[1] != generation:
                return False
            del self._objects[path]
            return True


def test_an_object_store_claim_is_taken_by_one_push_and_an_expired_one_is_taken_over():
    """The claim protocol on a store with GCS's preconditions (the GCS client itself is not
    exercised here: no bucket is reachable from this machine)."""
    import threading

    store, base = _MemoryStore(), "gs://bucket/serving/recommender"
    inside, overlaps, errors = [0], [], []

    def push():
        try:
            for _ in range(20):
                with push_lock.claimed(store, base, wait_s=30):
                    inside[0] += 1
                    overlaps.append(inside[0])
                    time.sleep(0.001)
                    inside[0] -= 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=push) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(overlaps) == 60 and max(overlaps) == 1
    assert store.read(base + "/" + push_lock.CLAIM_NAME) is None  # released
    # A claim whose push died (never released, lease expired) is taken over; the old holder,
    # if it still runs, finds at its marker check that it lost the claim.
    stale = push_lock.claimed(store, base, lease_s=0.0)
    old = stale.__enter__()
    with push_lock.claimed(store, base, wait_s=1) as new:
        new.check()
        with pytest.raises(push_lock.PushBusyError, match="expired and was taken over"):
            old.check()
    # A live claim (not expired) makes a second push wait, then fail naming it.
    with push_lock.claimed(store, base, lease_s=60):
        with pytest.raises(push_lock.PushBusyError, match="still holds .*claim expires in"):
            with push_lock.claimed(store, base, wait_s=0.2):
                pass


def test_a_push_to_a_store_without_a_claim_is_refused(tmp_path):
    with pytest.raises(ValueError, match="s3:// cannot be serialized"):
        versions.push(_model(tmp_path / "m"), "s3://bucket/serving/recommender")


def test_a_serving_directory_that_cannot_be_read_is_an_error_not_nothing_served(tmp_path,
                                                                                monkeypatch):
    """Only a directory that does not exist means "nothing is served": a file system this
    TensorFlow cannot read, or a bucket without credentials, stops the served-model finder."""
    import tensorflow as tf

    from recommender import baseline

    assert baseline.find(str(tmp_path / "never-pushed")).version is None
    with pytest.raises(versions.ServingDirError,
                       match=r"cannot read the serving directory s3://bucket/serving/recommender: "
                             r"UnimplementedError: .*'s3' not implemented"):
        baseline.find("s3://bucket/serving/recommender")

    def denied(path):
        raise tf.errors.PermissionDeniedError(None, None, f"{path}: 401 Anonymous caller")

    monkeypatch.setattr(tf.io.gfile, "exists", denied)
    with pytest.raises(versions.ServingDirError, match=r"gs://b/serving: PermissionDeniedError: "
                                                       r".*401 .*credentials"):
        versions.latest("gs://b/serving")
