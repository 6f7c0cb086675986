"""The pipeline definition and its composed configuration (the runners are local/ and kubeflow/,
the run's summary and report presentation/)."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
