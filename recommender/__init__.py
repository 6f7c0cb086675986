"""The recommender servable: retrieve -> rank -> re-rank rules in one SavedModel, and its clients.

``servable`` (the tf.Module TF Serving serves), ``assembly`` (builds it from the
index, the ranker and the interactions), ``rerank`` (the business rules and
their config), ``client`` (a pushed model loaded in process) and ``remote``
(TF Serving over REST or gRPC).
"""

import os

# See models/__init__.py: Keras 2 must be chosen before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
