"""Custom TFX components of tfx-recommender: one folder each, a spec and a thin executor.

The logic they run lives in ``models/`` and ``recommender/``.
"""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
