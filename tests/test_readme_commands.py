"""The README's main command, run as written (with output dirs moved to a temp dir)."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.e2e
def test_make_run_pushes_a_model_on_the_embedded_data(tmp_path):
    args = f"--output-dir {tmp_path}/out --serving-dir {tmp_path}/serving"
    result = subprocess.run(["make", "run", f"ARGS={args}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Blessed: True" in result.stdout
    assert f"Pushed to: {tmp_path}/serving/recommender/" in result.stdout
    recommend = subprocess.run([os.path.join(ROOT, ".venv/bin/recsys"), "recommend", "--user", "1",
                                "--serving-dir", f"{tmp_path}/serving"],
                               capture_output=True, text=True, timeout=600)
    assert recommend.returncode == 0, recommend.stderr[-2000:]
    assert recommend.stdout.count("\n") >= 11
