"""Kubeflow Pipelines v2 runner: compiles the pipeline to a PipelineSpec YAML.

It owns the platform: the container image, where data and artifacts live (storage
the pods can read), and GPUs for the two trainers. The pipeline definition is
the same ``create_pipeline`` the local runner uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Optional

import yaml
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

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


def create_kubeflow_pipeline(config: PipelineConfig, data_root: str, gpus: int = 1):
    """The pipeline with the trainers asking for GPUs."""
    pipe = pipeline_def.create_pipeline(config, data_root, IMAGE_SCHEMA_DIR)
    for component in pipe.components:
        if component.id in pipeline_def.TRAINERS and gpus > 0:
            component.with_platform_config(gpu_resources(gpus))
    return pipe


def compile_pipeline(config: PipelineConfig, output: str, image: Optional[str] = None,
                     data_root: str = DEFAULT_DATA_ROOT, pipeline_root: Optional[str] = None,
                     gpus: int = 1) -> str:
    """Writes the bare PipelineSpec YAML that ``kfp.Client().create_run_from_pipeline_package`` takes.

    Returns:
      The path written.
    """
    serving_dir = config.serving_dir if "://" in config.serving_dir else DEFAULT_SERVING_DIR
    config = dataclasses.replace(config, pipeline_root=pipeline_root or DEFAULT_PIPELINE_ROOT,
                                 metadata_path=None, serving_dir=serving_dir,
                                 beam_args=("--direct_running_mode=multi_processing",
                                            "--direct_num_workers=0"))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image or DEFAULT_IMAGE),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output))
    runner.run(create_kubeflow_pipeline(config, data_root, gpus))
    _never_cached(output)
    return output


def _never_cached(path: str) -> None:
    """Turns KFP's cache off for the nodes that read outside state (pipeline.NEVER_CACHED): a
    cached ServedModel would hand the evaluators the model served when it first ran."""
    with open(path) as f:
        spec = yaml.safe_load(f)
    for name, task in spec["root"]["dag"]["tasks"].items():
        if name in pipeline_def.NEVER_CACHED:
            task["cachingOptions"] = {"enableCache": False}
    with open(path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="kubeflow/pipeline.yaml")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT)
    parser.add_argument("--gpus", type=int, default=1)
    args = parser.parse_args()
    print(compile_pipeline(PipelineConfig(), args.output, args.image, args.data_root,
                           args.pipeline_root, args.gpus))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
