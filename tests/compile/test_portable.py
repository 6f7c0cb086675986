"""Level 3: the data steps through a distributed Beam engine's topology.

Beam's Python job service receives each pipeline over gRPC and runs it on an EXTERNAL worker
pool in other processes, as Flink or Spark on Kubernetes do with a job server and a worker-pool
sidecar: both ExampleGens, StatisticsGen and Transform run through ``PortableRunner`` with the
real TFX components and ML Metadata, and their outputs equal the DirectRunner's.
"""

import os
import re

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.proto.orchestration import pipeline_pb2

from local import runner as local_runner
from models import features
from models.data import schema
from pipeline import pipeline as pipeline_def
from pipeline import portable
from pipeline.config import DataConfig, PipelineConfig
from tests.support import plain_argv

pytestmark = pytest.mark.slow


def _run_data_steps(data_dir, out, beam_runner, beam_args,
                    to_nodes=(pipeline_def.CATALOGUE_GEN, "Transform")):
    config = PipelineConfig(serving_dir=str(out / "serving"), beam_runner=beam_runner,
                            beam_args=tuple(beam_args), data=DataConfig(data_dir=data_dir))
    config = local_runner.with_output_dir(config, str(out))
    whole = pipeline_def.create_pipeline(
        config, data_dir, schema.SCHEMA_DIR,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path))
    # A partial run: ``to_nodes`` and what they need (by default the data steps, nothing
    # downstream of Transform).
    options = pipeline_pb2.RunOptions(partial_run=pipeline_pb2.PartialRun(to_nodes=list(to_nodes)))
    with plain_argv():
        tfx.orchestration.LocalDagRunner().run_with_ir(pipeline_def.compile_ir(whole), run_options=options)


def _examples(root, component, split):
    folder = os.path.join(root, component, "examples")
    files = tf.io.gfile.glob(os.path.join(folder, "*", f"Split-{split}", "*"))
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def test_data_steps_run_through_a_job_service_and_worker_pool(tiny_data, tmp_path):
    with portable.local_services(str(tmp_path / "services")) as args:
        assert "--environment_type=EXTERNAL" in args
        _run_data_steps(tiny_data, tmp_path / "portable", "PortableRunner", args[1:])
    worker_log = open(tmp_path / "services" / "worker-pool.log", errors="replace").read()
    job_log = open(tmp_path / "services" / "job-service.log", errors="replace").read()
    # One job per Beam pipeline: two ExampleGens, StatisticsGen, Transform (analyze + transform).
    jobs = re.findall(r"Running job '(job-[0-9a-f-]+)'", job_log)
    assert len(jobs) >= 4 and job_log.count("with state DONE") == len(jobs)
    assert worker_log.count("Starting worker with command") >= len(jobs)
    # The DirectRunner's examples to compare with: its ExampleGens alone (and the schema
    # importer: a node outside the partial run that runs none of its inputs would be reused
    # from an earlier run, and there is none).
    _run_data_steps(tiny_data, tmp_path / "direct", "DirectRunner",
                    ["--direct_num_workers=1", "--direct_running_mode=in_memory"],
                    to_nodes=(pipeline_def.CATALOGUE_GEN, pipeline_def.INTERACTIONS_GEN,
                              "ImportSchemaGen"))
    root = tmp_path / "portable" / "pipeline_root"
    for split in (features.TRAIN, features.EVAL):
        got = _examples(root, pipeline_def.INTERACTIONS_GEN, split)
        assert got and got == _examples(tmp_path / "direct" / "pipeline_root",
                                        pipeline_def.INTERACTIONS_GEN, split)
    assert _examples(root, pipeline_def.CATALOGUE_GEN, features.CATALOGUE)
    # Transform ran there too: its graph and transformed examples exist.
    assert tf.io.gfile.glob(os.path.join(root, "Transform", "transform_graph", "*", "transform_fn",
                                         "saved_model.pb"))
    assert tf.io.gfile.glob(os.path.join(root, "Transform", "transformed_examples", "*",
                                         f"Split-{features.TRAIN}", "*"))
    assert tf.io.gfile.glob(os.path.join(root, "StatisticsGen", "statistics", "*",
                                         f"Split-{features.EVAL}", "FeatureStats.pb"))
