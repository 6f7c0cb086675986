"""The local runner: the pipeline on this machine with TFX's LocalDagRunner, Beam and a SQLite
ML Metadata store (``recsys run``). kubeflow/ is the other runner."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
