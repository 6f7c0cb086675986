"""Model code of tfx-recommender: data, features, Transform, retrieval, index, ranking, evaluation.

Nothing here imports TFX components, the pipeline or the runners; the
components (``components/``) call into it, and so do the benchmarks.

TensorFlow Recommenders needs Keras 2. TensorFlow picks its Keras when it is
first imported, so the switch is set here, the one place in the code: every other
package's ``__init__`` imports this one first (so ``recsys``, ``python -m pipeline...``,
``python -m bench...`` and every TFX executor or user module get it before TensorFlow
loads), and the image sets it in its environment (kubeflow/Dockerfile).
tests/unit/test_keras_switch.py checks both.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
