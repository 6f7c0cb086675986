"""Benchmarks (``make bench``): each prints its figures beside a baseline measured in the same run."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
