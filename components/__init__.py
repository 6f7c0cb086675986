"""Model code and custom TFX components of tfx-recommender.

TensorFlow Recommenders needs Keras 2. TensorFlow picks its Keras when it is
first imported, so the switch must be set before any module here imports it;
every TFX component runs in its own process (and pod), which imports this
package first.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
