"""The README's main command, run as written (with output dirs moved to a temp dir)."""

import os
import re
import subprocess

import pytest

from tests.support import ROOT


@pytest.mark.e2e
def test_make_run_pushes_a_model_on_the_embedded_data(made_run):
    result, out, serving = made_run.result, made_run.out, made_run.serving
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Blessed: True" in result.stdout
    assert f"Pushed to: {serving}/recommender/1" in result.stdout
    # A run people can watch: a line per component and per epoch, then the summary; the whole
    # TensorFlow/Beam/TFX log goes to the run's log file.
    lines = result.stdout.splitlines()
    assert any(re.match(r"  RetrievalTrainer +started$", line) for line in lines)
    assert any(re.match(r"  Pusher +done in [0-9.]+ s$", line) for line in lines)
    assert any(line.startswith("    retrieval (eval) epoch 1/") for line in lines)
    assert len(lines) < 120 and len(result.stderr.splitlines()) < 20, result.stderr[-2000:]
    log = re.search(r"^Run log: (\S+)", result.stdout, re.M).group(1)
    assert log.startswith(f"{out}/logs/run-")
    with open(log) as f:
        assert "Component Transform is running." in f.read()
    recommend = subprocess.run([os.path.join(ROOT, ".venv/bin/recsys"), "recommend", "--user", "1",
                                "--serving-dir", serving],
                               capture_output=True, text=True, timeout=600)
    assert recommend.returncode == 0, recommend.stderr[-2000:]
    assert recommend.stdout.count("\n") >= 11
