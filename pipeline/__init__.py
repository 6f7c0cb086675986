"""The pipeline definition, its composed configuration, the local runner and the run summary."""

import os

# See models/__init__.py: Keras 2 must be chosen before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
