"""The recommender servable: retrieve -> rank -> re-rank rules in one SavedModel, and its clients.

``servable`` (the tf.Module TF Serving serves), ``assembly`` (builds it from the
index, the ranker and the interactions), ``rerank`` (the business rules and
their config), ``client`` (a pushed model loaded in process) and ``remote``
(TF Serving over REST or gRPC).
"""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
