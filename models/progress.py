"""Progress messages: the one logger a local run shows on the console.

Everything else TensorFlow, Beam and TFX log goes to the run's log file
(``presentation/run_log.py``); messages sent here (training epochs) are also
printed as progress lines. On Kubeflow they are ordinary log lines.
"""

from __future__ import annotations

import logging

LOGGER = "recsys.progress"


def progress(message: str, *args) -> None:
    """Logs ``message % args`` as a progress line."""
    logging.getLogger(LOGGER).info(message, *args)
