"""Submitting a compiled pipeline to a Kubeflow Pipelines v2 endpoint, and following its run.

Through ``kfp.Client`` (the KFP SDK): it checks the endpoint's health, finds or creates the
experiment, then posts the run (``POST /apis/v2beta1/runs``) with the PipelineSpec, the
Kubernetes platform spec and the runtime config (parameters, pipeline root). Authentication is
KFP's usual: a bearer token from ``KF_PIPELINES_TOKEN`` or ``--token-file``, or the credentials
``kfp.Client`` finds itself (in-cluster service account, ``~/.config/kfp``); never a pipeline
parameter.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, Optional, Sequence

TERMINAL = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")


def parse_params(pairs: Sequence[str], defaults: Optional[Dict[str, object]] = None
                 ) -> Dict[str, object]:
    """``KEY=VALUE`` pairs as the pipeline's runtime parameters.

    ``SECTION.FIELD=VALUE`` (e.g. ``retrieval.epochs=5``) sets one field of a section
    parameter (its JSON): the rest of the section keeps the compiled values (``defaults``,
    the spec's parameter defaults). Values are JSON where they parse as JSON, else strings.
    """
    defaults = defaults or {}
    out: Dict[str, object] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        section, dot, field = key.partition(".")
        if dot:
            if section not in defaults and section not in out:
                raise ValueError(f"--param {pair!r}: the pipeline has no parameter {section!r}; "
                                 f"it has {sorted(defaults)}")
            current = json.loads(out.get(section) or defaults[section] or "{}")
            current[field] = value
            out[section] = json.dumps(current, sort_keys=True)
        else:
            if defaults and key not in defaults:
                raise ValueError(f"--param {pair!r}: the pipeline has no parameter {key!r}; "
                                 f"it has {sorted(defaults)}")
            out[key] = value
    return out


def parameter_defaults(spec: Dict) -> Dict[str, object]:
    """The compiled spec's pipeline parameters and their defaults."""
    return {name: definition.get("defaultValue")
            for name, definition in spec.get("root", {}).get("inputDefinitions", {})
            .get("parameters", {}).items()}


def client(host: str, token: Optional[str] = None):
    import kfp

    token = token or os.environ.get("KF_PIPELINES_TOKEN") or None
    return kfp.Client(host=host, existing_token=token)


def run_url(host: str, run_id: str) -> str:
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def submit(package: str, host: str, experiment: str = "tfx-recommender",
           params: Optional[Dict[str, str]] = None, pipeline_root: Optional[str] = None,
           run_name: Optional[str] = None, token: Optional[str] = None) -> str:
    """Submits ``package`` (kubeflow/pipeline.yaml) and returns the run id."""
    if not os.path.isfile(package):
        raise FileNotFoundError(f"{package} does not exist: write it with recsys compile first")
    result = client(host, token).create_run_from_pipeline_package(
        package, arguments=params or {}, run_name=run_name, experiment_name=experiment,
        pipeline_root=pipeline_root)
    return result.run_id


def status(host: str, run_id: str, token: Optional[str] = None) -> Dict[str, object]:
    """The run's state and each task's, as KFP reports them."""
    run = client(host, token).get_run(run_id)
    tasks = []
    details = getattr(run, "run_details", None)
    for task in (getattr(details, "task_details", None) or []):
        tasks.append({"task": task.display_name, "state": task.state})
    return {"run_id": run.run_id, "name": run.display_name, "state": run.state,
            "error": getattr(getattr(run, "error", None), "message", None), "tasks": tasks}


def follow(host: str, run_id: str, token: Optional[str] = None, interval: float = 10.0,
           timeout: float = 24 * 3600, emit: Callable[[str], None] = print) -> Dict[str, object]:
    """Prints a line whenever the run's or a task's state changes, until the run ends."""
    seen: Dict[str, str] = {}
    start = time.time()
    while True:
        current = status(host, run_id, token)
        for task in current["tasks"]:
            if seen.get(task["task"]) != task["state"]:
                seen[task["task"]] = task["state"]
                emit(f"  {task['task']:<24} {str(task['state']).lower()}")
        if current["state"] in TERMINAL or time.time() - start > timeout:
            return current
        time.sleep(interval)
