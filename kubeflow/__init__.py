"""Kubeflow Pipelines: the compiled spec, the container entrypoint, submission, the local harness."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
