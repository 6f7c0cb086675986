"""Level 1: TensorFlow Recommenders' Keras-2 switch is set in one place, before TensorFlow loads:
by importing any of the project's packages (models/__init__.py sets it), and in the image."""

import ast
import json
import os
import subprocess
import sys

import pytest

from tests.support import ROOT

VARIABLE = "TF_USE_LEGACY_KERAS"
# Every top-level package a user, an executor or a runner enters by.
ENTRIES = ("models", "recommender", "components", "pipeline", "presentation", "local", "kubeflow",
           "cli", "bench")


def _fresh(code: str) -> str:
    """stdout of ``code`` in a new interpreter whose environment lacks the switch."""
    env = {name: value for name, value in os.environ.items() if name != VARIABLE}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_importing_any_package_sets_the_switch_before_tensorflow_loads():
    found = json.loads(_fresh(
        "import importlib, json, os, sys\n"
        "out = {}\n"
        f"for name in {ENTRIES!r}:\n"
        "    importlib.import_module(name)\n"
        f"    out[name] = [os.environ.pop({VARIABLE!r}, None), 'tensorflow' in sys.modules]\n"
        "    for module in [m for m in sys.modules if m.split('.')[0] in "
        f"{ENTRIES!r}]:\n"
        "        del sys.modules[module]\n"
        "print(json.dumps(out))\n"))
    # Each package's own import set it, and none of them had loaded TensorFlow by then.
    assert found == {name: ["1", False] for name in ENTRIES}


@pytest.mark.slow
def test_tensorflow_after_the_cli_is_keras_2():
    # With the switch tf.keras is the tf_keras package (Keras 2); without it, Keras 3.
    module = _fresh("import cli.main\nimport tensorflow as tf\nprint(tf.keras.layers.Dense.__module__)")
    assert module.startswith("tf_keras."), module


def test_the_switch_is_written_once_in_the_packages_and_in_the_image():
    named = []
    for package in ENTRIES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    tree = ast.parse(open(path, encoding="utf-8").read(), path)
                    if any(isinstance(node, ast.Constant) and node.value == VARIABLE
                           for node in ast.walk(tree)):
                        named.append(os.path.relpath(path, ROOT))
    # The package's one entry, and the Kubeflow harness, which replays the image's environment.
    assert sorted(named) == [os.path.join("kubeflow", "harness.py"), os.path.join("models", "__init__.py")]
    with open(os.path.join(ROOT, "kubeflow", "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read().splitlines()
    assert f"ENV {VARIABLE}=1" in dockerfile
    # The image holds every package the switch's import chain and setup.py name.
    copied = {line.split()[1] for line in dockerfile if line.startswith("COPY ")}
    assert set(ENTRIES) - {"bench"} <= copied
