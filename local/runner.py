"""Local runner: LocalDagRunner, Beam DirectRunner and a SQLite ML Metadata store.

It owns the environment of a local run: where the data and schemas are, where
artifacts and metadata go, and the summary printed at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import signal
import threading
import time
from typing import Dict, Optional

from tfx import v1 as tfx

from models.data import layouts, schema, spans, synthetic
from models.data.beam import files as data_files
from models.data.errors import DataError
from pipeline import pipeline as pipeline_def
from pipeline.config import ConfigError, PipelineConfig
from presentation import run_log

SCHEMA_DIR = schema.SCHEMA_DIR


def data_root(config: PipelineConfig, output_dir: str) -> str:
    """The data folder of the run: the user's, or where the embedded dataset is generated."""
    data = config.data
    if data.data_dir is None:
        return os.path.join(output_dir, "data", f"synthetic-{data.synthetic_seed}")
    return os.path.abspath(data.data_dir)


def prepare_data(config: PipelineConfig, output_dir: str) -> str:
    """The data folder of the run: the user's (its layout, files and headers checked now,
    before any component starts; its rows by the ExampleGens) or the embedded synthetic
    dataset, generated on first use.

    Raises:
      DataError: the user's data is unusable; the message names file and field.
    """
    data = config.data
    if data.data_dir is None:
        _check_list_length(config, data.synthetic_items, "the embedded dataset")
        folder = data_root(config, output_dir)
        return synthetic.write_canonical(
            folder, num_users=data.synthetic_users, num_items=data.synthetic_items,
            num_interactions=data.synthetic_interactions, seed=data.synthetic_seed)
    # The rows are read and validated by the ExampleGens (in Beam, on the pipeline's runner);
    # here only what can be known without reading them: layout, files, headers, catalogue size.
    window, total = spans.choose(data.data_dir, data.span_pattern, data.spans)
    if window:
        print(f"Data: {data.data_dir}: {spans.describe(window, total)}", flush=True)
    counts = []
    for folder in [span.path for span in window] or [data.data_dir]:
        found = data_files.survey(folder)
        files = ", ".join(f"{os.path.basename(p)} {size / 1e6:.1f} MB"
                          for p, size in found["sizes"].items())
        print(f"Data: {folder} ({found['layout']}): {files}", flush=True)
        if found["items"] is not None:
            counts.append(found["items"])
    for table in found["absent"]:
        print(f"Data: no {table} file: {ABSENT[table]}", flush=True)
    if counts:
        # The window's catalogue holds at least its largest span's items.
        _check_list_length(config, max(counts), data.data_dir)
    return data_root(config, output_dir)


# What a run does without a side table (models/data/layouts.py: Table.present).
ABSENT = {layouts.USERS: "every user's demographics are unknown; the query tower knows users by id and "
                   "history alone",
          layouts.ITEMS: "every item's title, genres and year are unknown; the candidate tower knows "
                   "items by id alone"}


def input_bytes(folder: str, data=None) -> int:
    """Bytes of the data files in ``folder`` (of its window of spans when ``data``, the data
    section, names one): what the ExampleGens read."""
    window = spans.window(folder, data.span_pattern, data.spans) if data is not None else []
    return sum(os.path.getsize(os.path.join(f, name))
               for f in ([span.path for span in window] or [folder]) for name in os.listdir(f)
               if os.path.isfile(os.path.join(f, name)))


def _check_list_length(config: PipelineConfig, n_items: int, source: str) -> None:
    """A list longer than the catalogue cannot be served: refused before training."""
    if config.top_k > n_items:
        raise ConfigError(f"Invalid configuration: the list length (--top-k {config.top_k}) is more "
                          f"than the {n_items} items of {source}; ask for at most {n_items}")


def check_serving_dir(config: PipelineConfig) -> None:
    """Refuses a serving directory the push could not write, before anything runs.

    Raises:
      ConfigError: naming the folder and why.
    """
    probe = os.path.join(config.push_dir, f".write-check-{os.getpid()}")
    try:
        os.makedirs(config.push_dir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"Invalid configuration: the serving directory (--serving-dir) "
                          f"{config.serving_dir} cannot be written ({e.strerror or e}); choose a "
                          f"folder you can write") from e


class RunLockedError(RuntimeError):
    """Another run holds the output directory."""


@contextlib.contextmanager
def locked(output_dir: str):
    """Holds ``<output_dir>/run.lock`` for the run: a second run on the same folder is refused.

    The lock is the kernel's (flock): it goes with the process, so a killed run leaves none.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "run.lock")
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunLockedError(f"{output_dir} is in use by another recsys run ({holder}); wait for it "
                        f"to finish or choose another --output-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached the run (a BaseException, like KeyboardInterrupt: no
    component's ``except Exception`` swallows it). ``summary``: what completed, once known."""

    def __init__(self, signum: int, summary: Optional[Dict[str, object]] = None):
        super().__init__(f"interrupted by signal {signum} ({signal.Signals(signum).name})")
        self.signum, self.summary = signum, summary


@contextlib.contextmanager
def interruptible():
    """Turns SIGTERM and SIGINT into ``Interrupted`` in the main thread for the ``with``
    block, so the run unwinds: its lock is released, a push in progress removes its unfinished
    copy, and what completed is reported. A second signal while it unwinds gets the signal's
    default action. Elsewhere than in the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGTERM, signal.SIGINT)
    saved = {signum: signal.getsignal(signum) for signum in wanted}

    def handler(signum, _frame):
        for other in wanted:
            signal.signal(other, signal.SIG_DFL)
        raise Interrupted(signum)

    for signum in wanted:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def with_output_dir(config: PipelineConfig, output_dir: str) -> PipelineConfig:
    """Places pipeline root and metadata under ``output_dir``."""
    return dataclasses.replace(
        config,
        pipeline_root=os.path.join(output_dir, "pipeline_root"),
        metadata_path=os.path.join(output_dir, "metadata.sqlite"))


def run(config: PipelineConfig, output_dir: str) -> Dict[str, object]:
    """Runs the whole pipeline locally and returns its summary.

    Raises:
      ConfigError: a configuration value is out of range, the list is longer than the
        catalogue or the serving directory cannot be written (before any component runs).
      DataError: bad input data (the files and headers before any component runs; the rows by
        the ExampleGens, so nothing is trained or pushed).
      RunLockedError: another run uses ``output_dir``.
      RunFailedError: a component failed; it holds the summary of what completed. Earlier
        artifacts and the pushed model are left as they were.
    """
    output_dir = os.path.abspath(output_dir)
    with locked(output_dir):
        return _run(config, output_dir)


class RunFailedError(RuntimeError):
    """A component failed; ``summary`` holds what completed before it."""

    def __init__(self, message: str, summary: Dict[str, object]):
        super().__init__(message)
        self.summary = summary


def _run(config: PipelineConfig, output_dir: str) -> Dict[str, object]:
    config = with_output_dir(config, output_dir)
    config = dataclasses.replace(config, serving_dir=os.path.abspath(config.serving_dir))
    config.validate()  # before any data is read or generated
    check_serving_dir(config)
    folder = prepare_data(config, output_dir)
    n_bytes = input_bytes(folder, config.data)
    chosen = config.for_input(n_bytes)
    print(f"Beam: {_beam_line(chosen, n_bytes, chosen is not config)}", flush=True)
    config = chosen
    pipe = pipeline_def.create_pipeline(
        config, folder, SCHEMA_DIR,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path))
    started = time.time()
    from presentation import summary  # local import: reads ML Metadata after the run

    try:
        tfx.orchestration.LocalDagRunner().run_with_ir(pipeline_def.compile_ir(pipe))
    except DataError:
        raise
    except Interrupted as e:  # report what completed, then unwind
        result = summary.collect(config, started)
        result["failed"] = str(e)
        _report(result, output_dir, config)
        _write(result, output_dir)
        raise Interrupted(e.signum, result) from None
    except Exception as e:  # any component failure: report what completed, then re-raise
        lines = [line for line in str(e).splitlines() if line.strip()]
        result = summary.collect(config, started)
        result["failed"] = f"{type(e).__name__}: {lines[-1] if lines else ''}"
        _report(result, output_dir, config)
        _write(result, output_dir)
        raise RunFailedError(result["failed"], result) from e
    result = summary.collect(config, started)
    _report(result, output_dir, config)
    _write(result, output_dir)
    return result


def _beam_line(config: PipelineConfig, n_bytes: int, by_size: bool) -> str:
    """How the Beam steps run, in words (``by_size``: the mode was chosen for the input size)."""
    args = " ".join(config.beam_pipeline_args)
    if not by_size:
        return args
    return (f"DirectRunner in this process: {n_bytes / 1e6:.1f} MB of input, below "
            f"in_process_bytes ({config.in_process_bytes / 2**20:.0f} MiB); "
            f"--beam-arg=--direct_running_mode=multi_processing starts a worker per core")


def _report(result: Dict[str, object], output_dir: str, config: PipelineConfig) -> None:
    """Writes the run's HTML report; a report that cannot be written never fails the run."""
    from presentation import report

    try:
        result["report"] = report.write(output_dir, result, config.name)
    except Exception:  # noqa: BLE001 (the run's outcome stands; the log has the cause)
        logging.exception("The run report could not be written")


def _write(result: Dict[str, object], output_dir: str) -> None:
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump(result, f, indent=2)


def _with_flags(message: str, flags: Dict[str, str]) -> str:
    """``message`` with the command-line flag after each configuration field it names."""
    for field, flag in sorted(flags.items(), key=lambda kv: -len(kv[0])):
        message = re.sub(rf"(?<![\w.-]){re.escape(field)}(?![\w.])", f"{field} [{flag}]", message,
                         count=1)
    return message


def main(config: Optional[PipelineConfig] = None, output_dir: str = "tfx_output",
         flags: Optional[Dict[str, str]] = None, verbose: bool = False) -> int:
    """Runs, printing a progress line per component and epoch, then the summary.

    Args:
      config: the configuration (default: the embedded example).
      output_dir: artifacts, ML Metadata, ``logs/run-<id>.log`` (the whole log).
      flags: configuration field -> the command-line flag that sets it, named in errors.
      verbose: stream the whole log to stderr as well.

    Returns:
      0 pushed, 1 not pushed or failed, 2 refused before any component ran, 128 + N
      interrupted by signal N (SIGTERM, SIGINT).
    """
    config = config or PipelineConfig()
    from presentation import summary

    metadata_path = with_output_dir(config, os.path.abspath(output_dir)).metadata_path
    with run_log.capture(os.path.abspath(output_dir), verbose,
                         metadata_path=metadata_path) as log_path:
        print(f"Run log: {log_path}" + ("" if verbose else " (--verbose streams it)"), flush=True)
        try:
            with interruptible():
                result = run(config, output_dir)
        except Interrupted as e:
            if e.summary:
                print(summary.render(e.summary), flush=True)
            done = "What completed is above" if e.summary else "No component had started"
            print(f"error: {e}. {done}; the pushed model is as it was and the run's lock is "
                  f"released. The whole log: {log_path}", flush=True)
            return 128 + e.signum
        except ConfigError as e:
            print(f"error: {_with_flags(str(e), flags or {})}", flush=True)
            return 2
        except (DataError, RunLockedError) as e:
            print(f"error: {e}", flush=True)
            return 2
        except RunFailedError as e:
            print(summary.render(e.summary), flush=True)
            print(f"error: the run failed: {e}. What completed is above; the pushed model is "
                  f"unchanged. The whole log: {log_path}", flush=True)
            return 1
    print(summary.render(result), flush=True)
    return 0 if result.get("pushed") else 1


if __name__ == "__main__":
    raise SystemExit(main())
