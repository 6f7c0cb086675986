"""Custom TFX components of tfx-recommender: one folder each, a spec and a thin executor.

The logic they run lives in ``models/`` and ``recommender/``.
"""

import os

# See models/__init__.py: Keras 2 must be chosen before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
