"""Level 1-2: publishing versions to the serving directory never leaves a half-written one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from cli import main as cli
from recommender import client, versions


def _model(path, files=1, size=16, tag=b"m"):
    """A folder shaped like a SavedModel: variables, assets, saved_model.pb."""
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    for n in range(files):
        with open(os.path.join(path, "variables", f"shard-{n:04d}"), "wb") as f:
            f.write(tag * size)
    with open(os.path.join(path, versions.MARKER), "wb") as f:
        f.write(tag)
    return str(path)


def test_pushes_take_the_next_integer_and_keep_the_newest(tmp_path):
    base = str(tmp_path / "serving" / "recommender")
    for n in range(1, 4):
        path = versions.push(_model(tmp_path / f"m{n}", tag=str(n).encode()), base, keep=2)
        assert path == os.path.join(base, str(n))
    assert versions.versions(base) == [2, 3] and sorted(os.listdir(base)) == ["2", "3"]
    assert open(os.path.join(base, "3", versions.MARKER), "rb").read() == b"3"
    assert client.latest_version(base) == os.path.join(base, "3")


def test_leftovers_of_a_killed_push_are_never_served_and_are_removed(tmp_path):
    base = tmp_path / "recommender"
    versions.push(_model(tmp_path / "m1"), str(base))
    (base / "incoming-dead").mkdir()
    (base / "7" / "variables").mkdir(parents=True)  # an older pusher's half-written copy
    assert client.latest_version(str(base)) == str(base / "1")  # TF Serving's pick, complete only
    path = versions.push(_model(tmp_path / "m2"), str(base))
    assert path == str(base / "2") and sorted(os.listdir(base)) == ["1", "2"]


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
    assert sorted(os.listdir(base)) == ["1", "2"] and path == str(base / "2")
    assert len(os.listdir(base / "2" / "variables")) == 400
