"""The component image's entrypoint: TFX's Kubeflow v2 entrypoint, with what open-source KFP v2
sends repaired. A no-op on Vertex, which sends what TFX expects.

  python -m kubeflow.entrypoint --executor_class_path ... --json_serialized_invocation_args '{{$}}'
      --json_serialized_inputs_spec_args '...' [beam args]

What open-source KFP v2 (its driver and launcher, backend/src/v2) sends differently:
- Input artifacts arrive with an empty ``instanceSchema`` (its metadata client leaves it blank)
  or a ``system.*`` schema title; TFX's entrypoint then fails reading the artifact class
  (``'NoneType' object has no attribute 'get'``, tensorflow/tfx#7768). The component's own
  inputs spec (``--json_serialized_inputs_spec_args``, spec 2.1) carries the TFX type of each
  input: it is filled in from there.
- TFX's entrypoint publishes every declared output artifact whatever the executor returns, so
  a component cannot output "nothing" (ServedModel on a first run): it marks the artifact
  ``empty`` (components/served/executor.py) and this entrypoint drops such artifacts from the
  inputs of the tasks that read them, which then see an empty optional input, as locally.
- The process must end once the executor output is written: the pod's exit code is the task's.
  Some libraries crash in their exit handlers after a successful run, so a run that wrote its
  output exits with ``os._exit(0)``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Dict, List, Tuple

INVOCATION = "--json_serialized_invocation_args"
INPUTS_SPEC = "--json_serialized_inputs_spec_args"


def repair_invocation(invocation: Dict, inputs_spec: Dict) -> Tuple[Dict, List[str]]:
    """``invocation`` (the ExecutorInput as JSON) with each input artifact's type taken from the
    component's inputs spec where it is blank or a ``system.*`` type; and the keys repaired."""
    specs = inputs_spec.get("artifacts", {})
    repaired = []
    for key, holder in invocation.get("inputs", {}).get("artifacts", {}).items():
        schema = specs.get(key, {}).get("artifactType", {}).get("instanceSchema")
        if not schema:
            continue
        for artifact in holder.get("artifacts", []):
            kind = artifact.get("type") or {}
            title = kind.get("schemaTitle", "")
            if not kind.get("instanceSchema") and (not title or title.startswith("system.")):
                artifact["type"] = {"instanceSchema": schema}
                if key not in repaired:
                    repaired.append(key)
    return invocation, repaired


EMPTY = "empty"


def drop_empty(invocation: Dict) -> Tuple[Dict, List[str]]:
    """``invocation`` without the input artifacts marked empty; and the keys they were under."""
    dropped = []
    for key, holder in invocation.get("inputs", {}).get("artifacts", {}).items():
        kept = [a for a in holder.get("artifacts", [])
                if int(float((a.get("metadata") or {}).get(EMPTY, 0) or 0)) != 1]
        if len(kept) != len(holder.get("artifacts", [])):
            holder["artifacts"] = kept
            dropped.append(key)
    return invocation, dropped


def repair_argv(argv: List[str]) -> Tuple[List[str], List[str]]:
    """The command line with its invocation repaired (see ``repair_invocation``)."""
    argv = list(argv)
    if INVOCATION not in argv or INPUTS_SPEC not in argv:
        return argv, []
    at, spec_at = argv.index(INVOCATION) + 1, argv.index(INPUTS_SPEC) + 1
    invocation, repaired = repair_invocation(json.loads(argv[at]), json.loads(argv[spec_at] or "{}"))
    invocation, dropped = drop_empty(invocation)
    argv[at] = json.dumps(invocation)
    return argv, repaired + [f"{key} (empty)" for key in dropped]


def _output_file(argv: List[str]) -> str:
    if INVOCATION not in argv:
        return ""
    return json.loads(argv[argv.index(INVOCATION) + 1]).get("outputs", {}).get("outputFile", "")


def main(argv: List[str]) -> int:
    argv, repaired = repair_argv(argv)
    if repaired:
        logging.warning("Repaired inputs %s: artifact types filled in from the component's inputs "
                        "spec (open-source KFP v2 sends them blank); empty artifacts dropped",
                        repaired)
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags([sys.argv[0], *argv]))  # noqa: SLF001
    output = _output_file(argv)
    if output:
        import tensorflow as tf

        if tf.io.gfile.exists(output):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
