"""Model code of tfx-recommender: data, features, Transform, retrieval, index, ranking, evaluation.

Nothing here imports TFX components, the pipeline or the runners; the
components (``components/``) call into it, and so do the benchmarks.

TensorFlow Recommenders needs Keras 2. TensorFlow picks its Keras when it is
first imported, so the switch must be set before any module here imports it;
every TFX component runs in its own process (and pod), which imports the
package of its executor or user code first.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
