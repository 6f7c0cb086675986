"""Pipeline definition, configuration and runners of tfx-recommender."""

import os

# See components/__init__.py: Keras 2 must be chosen before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
