"""Links ScaNN's TensorFlow ops into a TF Serving source tree (used by Dockerfile.scann).

TF Serving links custom ops statically: the model server's BUILD lists op
libraries in ``SUPPORTED_TENSORFLOW_OPS``. This script, run inside the TF
Serving devel image, makes three edits and stops with a message naming the
file when a file does not look as expected (a TF Serving or ScaNN release
that moved things):

1. TF Serving's WORKSPACE: ScaNN's source as the local repository
   ``com_google_scann``.
2. TF Serving's ``tensorflow_serving/model_servers/BUILD``: ScaNN's op
   library in ``SUPPORTED_TENSORFLOW_OPS``.
3. ScaNN's BUILD files: TensorFlow from the server's own source tree instead of
   the pip package's headers and shared library; a static op library target;
   no pybind targets (the server does not build Python bindings).

Every edit is skipped when already present, so the script can run twice.
Usage: python3 link_scann_ops.py SERVING_ROOT SCANN_ROOT
"""

from __future__ import annotations

import os
import re
import sys

REPOSITORY = "com_google_scann"
OPS_TARGET = f"@{REPOSITORY}//scann/scann_ops/cc:scann_ops_static"
TF_DEPS = ('"@local_config_tf//:libtensorflow_framework",', '"@local_config_tf//:tf_header_lib",')
TF_IN_SERVER = '"@org_tensorflow//tensorflow/core:tensorflow_opensource",'
STATIC_LIBRARY = """
cc_library(
    name = "scann_ops_static",
    alwayslink = 1,
    deps = [
        ":scann_ops",
        ":scann_ops_kernels",
    ],
)
"""


class LayoutError(RuntimeError):
    pass


def _read(path: str) -> str:
    if not os.path.isfile(path):
        raise LayoutError(f"{path}: not found; is the argument the root of the source tree?")
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def add_repository(serving_root: str, scann_root: str) -> bool:
    path = os.path.join(serving_root, "WORKSPACE")
    text = _read(path)
    if f'name = "{REPOSITORY}"' in text:
        return False
    _write(path, text.rstrip("\n") + f'\n\nlocal_repository(\n    name = "{REPOSITORY}",\n'
                                     f'    path = "{os.path.abspath(scann_root)}",\n)\n')
    return True


def add_ops(serving_root: str) -> bool:
    path = os.path.join(serving_root, "tensorflow_serving", "model_servers", "BUILD")
    text = _read(path)
    if OPS_TARGET in text:
        return False
    anchor = "SUPPORTED_TENSORFLOW_OPS = "
    if text.count(anchor) != 1:
        raise LayoutError(f"{path}: expected one '{anchor}' assignment, found {text.count(anchor)}")
    _write(path, text.replace(anchor, f'{anchor}["{OPS_TARGET}"] + '))
    return True


def use_server_tensorflow(scann_root: str) -> bool:
    path = os.path.join(scann_root, "scann", "oss_wrappers", "BUILD.bazel")
    text = _read(path)
    if TF_IN_SERVER in text:
        return False
    if not all(dep in text for dep in TF_DEPS):
        raise LayoutError(f"{path}: the TensorFlow dependencies {TF_DEPS} were not found")
    text = text.replace(TF_DEPS[0], TF_IN_SERVER).replace(TF_DEPS[1] + "\n", "")
    text = text.replace(TF_DEPS[1], "")
    _write(path, text)
    return True


def add_static_library(scann_root: str) -> bool:
    path = os.path.join(scann_root, "scann", "scann_ops", "cc", "BUILD.bazel")
    text = _read(path)
    if 'name = "scann_ops_static"' in text:
        return False
    for name in ("scann_ops", "scann_ops_kernels"):
        if f'name = "{name}"' not in text:
            raise LayoutError(f"{path}: no target '{name}' to link into the server")
    text = re.sub(r'^load\("@pybind11_bazel//[^\n]*\n', "", text, flags=re.M)
    text = re.sub(r"^pybind_library\(\n.*?^\)\n", "", text, flags=re.M | re.S)
    _write(path, text.rstrip("\n") + "\n" + STATIC_LIBRARY)
    return True


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    serving_root, scann_root = argv
    try:
        steps = [("WORKSPACE repository", add_repository(serving_root, scann_root)),
                 ("model server op list", add_ops(serving_root)),
                 ("ScaNN uses the server's TensorFlow", use_server_tensorflow(scann_root)),
                 ("ScaNN static op library", add_static_library(scann_root))]
    except LayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, changed in steps:
        print(f"{name}: {'added' if changed else 'already present'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
