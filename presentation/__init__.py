"""How a run is shown: its summary read from ML Metadata, the HTML report and its charts, the
per-step log and progress line. Below the runners, above the pipeline definition it reads."""

import models  # noqa: F401 (its import sets the Keras-2 switch before TensorFlow loads)
