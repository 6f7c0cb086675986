"""The ``recsys`` command line: runs the local runner, compiles for Kubeflow, queries a model."""

import os

# See models/__init__.py: Keras 2 must be chosen before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
