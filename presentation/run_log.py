"""What a local run prints: one progress line per component and per training epoch, the full
TensorFlow/Beam/TFX log in ``<output-dir>/logs/run-<id>.log``.

Component starts and ends are read from ML Metadata as the run goes
(``ComponentWatcher``); ``models.progress`` messages become console lines;
everything goes to the file, and ``verbose`` streams the whole log to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import Iterator, Optional

from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from models.progress import LOGGER
from presentation import summary

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class ProgressHandler(logging.Handler):
    """Prints ``models.progress`` messages (training epochs) to ``stream``."""

    def __init__(self, stream):
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == LOGGER:
            self.stream.write(f"    {record.getMessage()}\n")
            self.stream.flush()


class ComponentWatcher(threading.Thread):
    """Prints a line when a component of the run starts and when it ends, read from ML Metadata.

    TFX logs component starts at absl's INFO level, which components may turn
    off; the executions in ML Metadata are the record, whatever the log level.
    """

    def __init__(self, metadata_path: str, since: float, stream, interval: float = 1.0):
        super().__init__(daemon=True)
        self._path, self._since, self._stream = metadata_path, since, stream
        self._interval, self._done, self._seen, self._store = interval, threading.Event(), {}, None

    def _poll(self) -> None:
        if self._store is None:
            if not os.path.exists(self._path):
                return
            self._store = metadata_store.MetadataStore(
                metadata.sqlite_metadata_connection_config(self._path))
        for execution in summary.run_executions(self._store, self._since):
            state = summary.state_of(execution).lower()
            if self._seen.get(execution.id) == state:
                continue
            name = summary.node_id(self._store, execution)
            if state in ("new", "running"):
                line = f"  {name:<24} started"
            else:
                verb = "done" if state == "complete" else state
                line = f"  {name:<24} {verb} in {summary.seconds_of(execution):.1f} s"
            if execution.id in self._seen or state in ("new", "running"):
                self._stream.write(line + "\n")
            else:  # started and ended between two polls
                self._stream.write(f"  {name:<24} started\n{line}\n")
            self._stream.flush()
            self._seen[execution.id] = state

    def run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                self._poll()
            except Exception:  # the store is busy or not created yet: next poll
                logging.debug("progress poll failed", exc_info=True)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
        try:
            self._poll()  # the last states
        except Exception:
            logging.debug("last progress poll failed", exc_info=True)


# Loggers that libraries give handlers of their own (which would bypass the run's file).
_OWN_HANDLERS = ("tensorflow",)


@contextlib.contextmanager
def capture(output_dir: str, verbose: bool = False, stream=None,
            metadata_path: Optional[str] = None) -> Iterator[str]:
    """Routes logging for the run and, given ``metadata_path``, prints component progress;
    yields the log file's path. Restores the handlers after."""
    folder = os.path.join(output_dir, "logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    handlers = [file_handler, ProgressHandler(stream or sys.stdout)]
    if verbose:
        streaming = logging.StreamHandler(sys.stderr)
        streaming.setFormatter(logging.Formatter(_FORMAT))
        handlers.append(streaming)
    for handler in saved[0]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    # TensorFlow gives its logger a stderr handler of its own when it first logs while the root
    # logger has none (an import before this capture): its records go to the file like any other.
    own = {name: list(logging.getLogger(name).handlers) for name in _OWN_HANDLERS}
    for name, found in own.items():
        for handler in found:
            logging.getLogger(name).removeHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    # Beam's worker processes (the DirectRunner's multi-processing mode) inherit file
    # descriptor 2: without --verbose it points at the log file for the run, so their TensorFlow
    # and Beam lines go there too, not to the terminal.
    saved_stderr = None
    if not verbose:
        sys.stderr.flush()
        saved_stderr = os.dup(2)
        os.dup2(file_handler.stream.fileno(), 2)
    watcher = None
    if metadata_path:
        watcher = ComponentWatcher(metadata_path, time.time(), stream or sys.stdout)
        watcher.start()
    try:
        yield path
    finally:
        if watcher:
            watcher.stop()
        if saved_stderr is not None:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
        logging.captureWarnings(False)
        for handler in handlers:
            root.removeHandler(handler)
        file_handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, found in own.items():
            for handler in found:
                logging.getLogger(name).addHandler(handler)
