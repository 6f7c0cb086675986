"""Kubeflow runner: compiles the pipeline for open-source Kubeflow Pipelines v2 or Vertex AI.

It owns the platform: the container image, where data and artifacts live (storage
the pods can read), and GPUs for the two trainers. The pipeline definition is
the same ``create_pipeline`` the local runner uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Dict, Optional, Sequence, Tuple

import yaml
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from models.config import encode
from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig

DEFAULT_IMAGE = "ghcr.io/tfx-recommender/tfx-recommender:0.1.0"
DEFAULT_DATA_ROOT = "gs://YOUR_BUCKET/tfx-recommender/data"
DEFAULT_PIPELINE_ROOT = "gs://YOUR_BUCKET/tfx-recommender/pipeline_root"
DEFAULT_SERVING_DIR = "gs://YOUR_BUCKET/tfx-recommender/serving"
# Where the Dockerfile puts the curated schemas inside the image.
IMAGE_SCHEMA_DIR = "/tfx-recommender/schemas"
GPU_TYPE = "nvidia.com/gpu"


_RESOURCE_SPEC = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def gpu_resources(count: int = 1) -> _RESOURCE_SPEC:
    """Container resources asking for ``count`` NVIDIA GPUs (a pod limit on open-source KFP)."""
    resource_spec = _RESOURCE_SPEC
    return resource_spec(accelerator=resource_spec.AcceleratorConfig(type=GPU_TYPE, count=count))


def run_parameters(config: PipelineConfig, data_root: str) -> Dict[str, object]:
    """pipeline.RUN_PARAMETERS as Kubeflow runtime parameters, defaulting to the compiled values."""
    parameter = tfx.dsl.experimental.RuntimeParameter
    return {
        "data_root": parameter(name="data_root", ptype=str, default=data_root),
        "serving_dir": parameter(name="serving_dir", ptype=str, default=config.serving_dir),
        "top_k": parameter(name="top_k", ptype=int, default=config.top_k),
        "retrieval": parameter(name="retrieval", ptype=str, default=encode(config.retrieval)),
        "ranking": parameter(name="ranking", ptype=str, default=encode(config.ranking)),
        "evaluation": parameter(name="evaluation", ptype=str, default=encode(config.evaluation)),
    }


def create_kubeflow_pipeline(config: PipelineConfig, data_root: str, gpus: int = 1):
    """The pipeline with the trainers asking for GPUs and the run parameters as pipeline inputs."""
    pipe = pipeline_def.create_pipeline(config, data_root, IMAGE_SCHEMA_DIR,
                                        parameters=run_parameters(config, data_root))
    for component in pipe.components:
        if component.id in pipeline_def.TRAINERS and gpus > 0:
            component.with_platform_config(gpu_resources(gpus))
    return pipe


# The image's command: TFX's v2 entrypoint behind the project's repairs (kubeflow/entrypoint.py).
ENTRYPOINT = ["python", "-m", "kubeflow.entrypoint"]
# Tasks KFP must never take from its cache: the ExampleGens (new data under the same path looks
# unchanged to KFP; ExampleGen's own pre-cache check runs on Vertex only) and the nodes that read
# state outside the pipeline (pipeline.NEVER_CACHED: the serving directory).
UNCACHED = ("InteractionsExampleGen", "CatalogueExampleGen") + pipeline_def.NEVER_CACHED
# GKE and most clusters taint GPU nodes so that only pods tolerating it land there.
DEFAULT_TOLERATIONS = ({"key": GPU_TYPE, "operator": "Exists", "effect": "NoSchedule"},)
TARGETS = ("kfp", "vertex")


def platform_spec(executor_labels: Dict[str, str], node_selector: Optional[Dict[str, str]] = None,
                  tolerations: Sequence[Dict[str, str]] = DEFAULT_TOLERATIONS) -> Dict:
    """The KFP Kubernetes platform spec (the second YAML document, as kfp-kubernetes writes it):
    the trainers' executors get the GPU node pool's node selector and tolerations.

    Args:
      executor_labels: task name -> its executor label in the PipelineSpec.
    """
    executors = {}
    for task in pipeline_def.TRAINERS:
        settings = {}
        if node_selector:
            settings["nodeSelector"] = {"labels": dict(node_selector)}
        if tolerations:
            settings["tolerations"] = [dict(t) for t in tolerations]
        if settings:
            executors[executor_labels[task]] = settings
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def check_remote(paths: Dict[str, str]) -> None:
    """Raises ValueError naming the first flag whose path is local: a Kubeflow pod reads and
    writes object stores (gs://, s3://, ...), not the disk of the machine that compiled."""
    for flag, path in paths.items():
        if "://" not in path:
            raise ValueError(f"{flag} {path} is a local path, which the pipeline's pods cannot "
                             f"read; give an object store URI (e.g. gs://BUCKET/tfx-recommender/"
                             f"{flag.lstrip('-').replace('-', '_')}), or set it per run as a run "
                             f"parameter")


def compile_pipeline(config: PipelineConfig, output: str, image: Optional[str] = None,
                     data_root: str = DEFAULT_DATA_ROOT, pipeline_root: Optional[str] = None,
                     gpus: int = 1, target: str = "kfp",
                     node_selector: Optional[Dict[str, str]] = None,
                     tolerations: Sequence[Dict[str, str]] = DEFAULT_TOLERATIONS,
                     beam_args: Sequence[str] = (), serving_dir: Optional[str] = None,
                     local_paths: bool = False) -> str:
    """Compiles the pipeline for open-source Kubeflow Pipelines v2 or Vertex AI Pipelines.

    Spec schema 2.1 (parameters as ``runtimeValue.constant``, which the open-source driver
    requires; each component's inputs spec passed to its container), the project's entrypoint,
    the trainers asking for ``gpus`` GPUs, caching off for ``UNCACHED``.

    Args:
      target: 'kfp': a bare PipelineSpec YAML (``kfp.Client().create_run_from_pipeline_package``
        takes it), followed by the Kubernetes platform spec document (node selector and
        tolerations of the trainers); 'vertex': a PipelineJob JSON with its ``runtimeConfig``.
      beam_args: Beam options of every Beam-using component (default: the DirectRunner on
        every core of the pod).
      serving_dir: where the Pusher publishes (default: the config's when it is an object
        store URI, else DEFAULT_SERVING_DIR).
      local_paths: accept local ``data_root``, ``pipeline_root`` and ``serving_dir`` (the
        harness runs the tasks on this machine); otherwise a local path is refused, since the
        pods cannot read this machine's disk.

    Returns:
      The path written.

    Raises:
      ValueError: an unknown target, or a local path without ``local_paths``.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    serving_dir = serving_dir or (config.serving_dir if "://" in config.serving_dir
                                  else DEFAULT_SERVING_DIR)
    root = pipeline_root or DEFAULT_PIPELINE_ROOT
    if not local_paths:
        check_remote({"--data": data_root, "--pipeline-root": root, "--serving-dir": serving_dir,
                      **({"--request-log": config.data.request_log} if config.data.request_log else {})})
    config = dataclasses.replace(config, pipeline_root=root, metadata_path=None,
                                 serving_dir=serving_dir,
                                 beam_args=tuple(beam_args) or config.beam_args)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image or DEFAULT_IMAGE, default_commands=list(ENTRYPOINT),
            use_pipeline_spec_2_1=True))
    job = runner.run(create_kubeflow_pipeline(config, data_root, gpus), write_out=False)
    spec = job["pipelineSpec"]
    # TFX declares the run parameters without their defaults: a run that sets none gets these.
    defaults = {name: p.default for name, p in run_parameters(config, data_root).items()}
    for name, value in defaults.items():
        spec["root"]["inputDefinitions"]["parameters"][name]["defaultValue"] = value
    for name, task in spec["root"]["dag"]["tasks"].items():
        if name in UNCACHED:
            task["cachingOptions"] = {"enableCache": False}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if target == "vertex":
        job["runtimeConfig"] = {**job.get("runtimeConfig", {}), "gcsOutputDirectory": root,
                                "parameterValues": defaults}
        with open(output, "w") as f:
            json.dump(job, f, indent=2)
        return output
    labels = {name: spec["components"][task["componentRef"]["name"]]["executorLabel"]
              for name, task in spec["root"]["dag"]["tasks"].items()}
    with open(output, "w") as f:
        yaml.safe_dump_all([spec, platform_spec(labels, node_selector, tolerations)], f,
                           sort_keys=False)
    return output


def load(path: str) -> Tuple[Dict, Dict]:
    """(the PipelineSpec, the platform spec or {}) of a file ``compile_pipeline`` wrote."""
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        return json.loads(text)["pipelineSpec"], {}
    documents = [d for d in yaml.safe_load_all(text) if d]
    return documents[0], (documents[1] if len(documents) > 1 else {})


def parse_toleration(text: str) -> Dict[str, str]:
    """``KEY[=VALUE]:EFFECT`` (e.g. ``nvidia.com/gpu:NoSchedule``) as a Kubernetes toleration."""
    key_value, _, effect = text.rpartition(":")
    if not key_value or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"toleration {text!r}: expected KEY[=VALUE]:EFFECT with EFFECT one of "
                         f"NoSchedule, PreferNoSchedule, NoExecute")
    key, equals, value = key_value.partition("=")
    toleration = {"key": key, "operator": "Equal" if equals else "Exists", "effect": effect}
    if equals:
        toleration["value"] = value
    return toleration


def parse_labels(pairs: Sequence[str]) -> Dict[str, str]:
    """``KEY=VALUE`` pairs as a dict."""
    out = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"node selector {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="kubeflow/pipeline.yaml")
    parser.add_argument("--target", choices=TARGETS, default="kfp")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT)
    parser.add_argument("--gpus", type=int, default=1)
    args = parser.parse_args()
    print(compile_pipeline(PipelineConfig(), args.output, args.image, args.data_root,
                           args.pipeline_root, args.gpus, args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
