"""The ``recsys`` command line: runs the local runner, compiles for Kubeflow, queries a model."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
