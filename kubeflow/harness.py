"""Runs a compiled Kubeflow spec without a cluster, task by task, the way KFP v2 would.

  python -m kubeflow.harness kubeflow/pipeline.yaml --root /tmp/kfp-root [--mode oss|vertex]

It walks the DAG as the KFP v2 driver and launcher do (kubeflow/pipelines backend/src/v2):
resolves each task's parameters and input artifacts, gives its outputs URIs under a local
pipeline root, builds the ExecutorInput, runs the task's container command as a subprocess (the
image's paths mapped onto this checkout, ``python`` this interpreter), reads the
``executor_output.json`` the container wrote and publishes its artifacts to the tasks downstream.

Modes, the rules of each backend that matter to TFX's containers:
- ``oss`` (open-source KFP v2): parameters must be ``runtimeValue.constant`` (the driver answers
  ``constantValue`` with "ConstantValue not implemented"); input artifacts arrive with a blank
  type (its metadata client does not return the schema); declared outputs are published even
  when the container's executor output leaves them out.
- ``vertex``: ``constant`` or ``constantValue``; input artifacts carry their declared type.

What it does not model: caching, retries, the Kubernetes side (images, GPUs, node selectors,
tolerations: checked statically by the tests), object stores (the root is a local folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Dict, List, Optional

MODES = ("oss", "vertex")
IMAGE_ROOT = "/tfx-recommender"  # where kubeflow/Dockerfile puts the project in the image
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class HarnessError(RuntimeError):
    """A task could not be resolved or its container failed (names the task and its log)."""


def _order(tasks: Dict[str, Dict]) -> List[str]:
    """Task names, each after the tasks it depends on."""
    done: List[str] = []
    pending = dict(tasks)
    while pending:
        ready = [name for name, task in pending.items()
                 if all(dep in done for dep in _dependencies(task))]
        if not ready:
            raise HarnessError(f"the DAG has a cycle or a missing task among {sorted(pending)}")
        for name in sorted(ready):
            done.append(name)
            del pending[name]
    return done


def _dependencies(task: Dict) -> List[str]:
    deps = set(task.get("dependentTasks", []))
    for holder in task.get("inputs", {}).get("artifacts", {}).values():
        producer = holder.get("taskOutputArtifact", {}).get("producerTask")
        if producer:
            deps.add(producer)
    return sorted(deps)


def _map_paths(value, image_root: str, checkout: str):
    if isinstance(value, str) and value.startswith(image_root + "/"):
        return checkout + value[len(image_root):]
    return value


def _parameter(name: str, task_name: str, source: Dict, mode: str, runtime: Dict):
    if "runtimeValue" in source:
        value = source["runtimeValue"]
        if "constant" in value:
            return value["constant"]
        if "constantValue" in value:
            if mode == "oss":
                raise HarnessError(f"{task_name}: parameter {name!r} is runtimeValue.constantValue: "
                                   f"ConstantValue not implemented (open-source KFP v2 driver); "
                                   f"compile with pipeline spec 2.1")
            constant = value["constantValue"]
            return next(iter(constant.values()))
    if "componentInputParameter" in source:
        key = source["componentInputParameter"]
        if key not in runtime:
            raise HarnessError(f"{task_name}: pipeline parameter {key!r} has no value")
        return runtime[key]
    raise HarnessError(f"{task_name}: parameter {name!r} has an unsupported source {source}")


def run(spec: Dict, root: str, mode: str = "oss", parameters: Optional[Dict] = None,
        image_root: str = IMAGE_ROOT, checkout: str = CHECKOUT, env: Optional[Dict] = None,
        emit=print) -> Dict[str, Dict]:
    """Runs every task of ``spec`` (a PipelineSpec dict); returns each task's published outputs.

    Raises:
      HarnessError: a task's inputs cannot be resolved under ``mode``'s rules, or its container
        failed (the message names the task, its exit code and its log file).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    runtime = {}
    for name, definition in spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}).items():
        if "defaultValue" in definition:
            runtime[name] = definition["defaultValue"]
    runtime.update(parameters or {})
    tasks = spec["root"]["dag"]["tasks"]
    published: Dict[str, Dict[str, List[Dict]]] = {}
    environment = {**os.environ, **(env or {}), "TF_USE_LEGACY_KERAS": "1",
                   "PYTHONPATH": os.pathsep.join([checkout, os.environ.get("PYTHONPATH", "")])}
    for name in _order(tasks):
        task = tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        task_dir = os.path.join(root, run_id, name)
        os.makedirs(task_dir, exist_ok=True)
        values = {key: _map_paths(_parameter(key, name, source, mode, runtime), image_root, checkout)
                  for key, source in task.get("inputs", {}).get("parameters", {}).items()}
        declared = component.get("inputDefinitions", {}).get("artifacts", {})
        artifacts = {}
        for key, holder in task.get("inputs", {}).get("artifacts", {}).items():
            source = holder["taskOutputArtifact"]
            found = published[source["producerTask"]].get(source["outputArtifactKey"], [])
            items = []
            for artifact in found:
                item = json.loads(json.dumps(artifact))
                # OSS: the launcher's metadata client returns no type schema.
                item["type"] = ({} if mode == "oss"
                                else dict(declared.get(key, {}).get("artifactType", {})))
                items.append(item)
            artifacts[key] = {"artifacts": items}
        outputs = {}
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            outputs[key] = {"artifacts": [{
                "name": f"{name}-{key}", "uri": os.path.join(task_dir, key),
                "type": dict(definition.get("artifactType", {})), "metadata": {}}]}
        output_file = os.path.join(task_dir, "executor_output.json")
        invocation = {"inputs": {"parameterValues": values, "artifacts": artifacts},
                      "outputs": {"artifacts": outputs, "outputFile": output_file}}
        command = [sys.executable if part == "python" else part for part in container["command"]]
        args = [json.dumps(invocation) if arg == "{{$}}" else arg for arg in container.get("args", [])]
        log = os.path.join(task_dir, "log.txt")
        emit(f"  {name:<24} started")
        start = time.time()
        with open(log, "w") as out:
            code = subprocess.run(command + args, stdout=out, stderr=subprocess.STDOUT,
                                  env=environment, cwd=checkout).returncode
        if code != 0:
            tail = open(log).read()[-3000:]
            raise HarnessError(f"{name}: the container exited with {code}; log {log}:\n{tail}")
        result = json.load(open(output_file)) if os.path.exists(output_file) else {}
        written = result.get("artifacts", {})
        published[name] = {}
        for key, holder in outputs.items():
            if key in written:
                published[name][key] = written[key].get("artifacts", [])
            else:  # the launcher publishes declared outputs the executor output leaves out
                published[name][key] = holder["artifacts"]
        emit(f"  {name:<24} done in {time.time() - start:.1f} s")
    return published


def main(argv: Optional[List[str]] = None) -> int:
    from kubeflow import runner, submit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="what recsys compile wrote")
    parser.add_argument("--root", required=True, help="local folder for the tasks' outputs")
    parser.add_argument("--mode", choices=MODES, default="oss")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a run parameter, as recsys submit takes it (SECTION.FIELD=VALUE too)")
    args = parser.parse_args(argv)
    spec, _ = runner.load(args.spec)
    try:
        params = submit.parse_params(args.param, submit.parameter_defaults(spec))
        run(spec, args.root, args.mode, params)
    except (HarnessError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
