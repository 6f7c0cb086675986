"""A Beam job service and an external worker pool on this machine: the portable topology.

Flink or Spark on Kubernetes run a Beam pipeline as a job server that receives the
pipeline and a pool of SDK workers (a sidecar per task manager) that run its Python code.
Beam's own Python job service with an EXTERNAL worker pool has the same shape and starts
without downloading a job-server jar, so the pipeline's data steps can be run through
``PortableRunner`` here, in the tests and with ``recsys run --beam-runner PortableRunner``
against a real cluster's endpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Iterator, List, Tuple


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited with code {process.returncode} before listening "
                               f"on port {port}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the {what} did not listen on port {port} within {timeout:.0f} s")


def beam_args(job_port: int, worker_port: int) -> Tuple[str, ...]:
    """The Beam options of a pipeline run through the job service with the external pool."""
    return (f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{worker_port}")


@contextlib.contextmanager
def local_services(log_dir: str, timeout: float = 60.0) -> Iterator[Tuple[str, ...]]:
    """Starts Beam's Python job service and an external SDK worker pool; yields the Beam
    options (``beam_args``) that send pipelines to them; stops both on exit.

    The worker pool starts each worker as a bare ``python``: this interpreter's folder goes
    first on its PATH, so workers import the same packages (and this project).
    """
    os.makedirs(log_dir, exist_ok=True)
    job_port, worker_port = free_port(), free_port()
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    processes: List[subprocess.Popen] = []
    try:
        for name, command, port in (
                ("worker pool", ["-m", "apache_beam.runners.worker.worker_pool_main",
                                 f"--service_port={worker_port}"], worker_port),
                ("job service", ["-m", "apache_beam.runners.portability.local_job_service_main",
                                 f"--port={job_port}"], job_port)):
            log = open(os.path.join(log_dir, name.replace(" ", "-") + ".log"), "ab")
            processes.append(subprocess.Popen([sys.executable] + command, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
            _wait_for(port, processes[-1], name, timeout)
        yield ("--runner=PortableRunner",) + beam_args(job_port, worker_port)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
