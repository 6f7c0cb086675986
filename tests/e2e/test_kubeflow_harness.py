"""Level 4: the compiled Kubeflow spec run task by task without a cluster, under open-source KFP
v2's rules (kubeflow/harness.py), through the project's container entrypoint, to a pushed model."""

import json
import os

import pytest
import tensorflow as tf

from kubeflow import harness, runner
from pipeline.config import EvalConfig, PipelineConfig, RankingConfig, RetrievalConfig
from recommender import versions
from recommender.config import base_of
from tests.support import EVAL_REQUESTS


# A whole pipeline run, one fresh process per task (each imports TensorFlow): e2e's time limit.
# At 420 s (`slow`) it timed out in a CI whose host ran every test about 2.8x slower than usual.
@pytest.mark.e2e
def test_every_task_runs_in_oss_mode_to_a_pushed_model(tiny_data, tmp_path):
    spec_path = tmp_path / "pipeline.yaml"
    config = PipelineConfig(retrieval=RetrievalConfig(epochs=2, learning_rate=0.005),
                            ranking=RankingConfig(epochs=1), evaluation=EvalConfig(requests=EVAL_REQUESTS))
    runner.compile_pipeline(config, str(spec_path), data_root=tiny_data,
                            pipeline_root=str(tmp_path / "root"),
                            serving_dir=str(tmp_path / "serving"), gpus=1, local_paths=True,
                            beam_args=("--direct_running_mode=in_memory", "--direct_num_workers=1"))
    spec, _ = runner.load(str(spec_path))
    lines = []
    # Run parameters as a submission would set them: another serving directory, a longer list,
    # three retrieval epochs (two compiled) and no refit (--no-refit: the holdout model is
    # deployed). One epoch is too few to pass the gate: lift 1.09 over popularity, 1.1 required.
    retrieval = json.loads(spec["root"]["inputDefinitions"]["parameters"]["retrieval"]["defaultValue"])
    published = harness.run(spec, str(tmp_path / "kfp-root"), mode="oss", emit=lines.append,
                            parameters={"top_k": 20, "serving_dir": str(tmp_path / "elsewhere"),
                                        "retrieval": json.dumps({**retrieval, "epochs": 3, "refit": False})})
    assert set(published) == set(spec["root"]["dag"]["tasks"])
    # The first run serves nothing: ServedModel's artifact is marked empty and the entrypoint
    # dropped it, so the stock Evaluator ran without a baseline instead of failing on it.
    served = published["ServedModel"]["model"][0]
    assert int(served["metadata"]["empty"]) == 1
    pushed = published["Pusher"]["pushed_model"][0]
    verdict = json.load(open(os.path.join(published["RecommenderEvaluator"]["evaluation"][0]["uri"],
                                          "metrics.json")))["blessing"]
    print("gate:", verdict["reasons"])
    assert int(pushed["metadata"]["pushed"]) == 1, verdict["reasons"]
    base = base_of(str(tmp_path / "elsewhere"))
    assert versions.versions(base) == [1] and not os.path.exists(tmp_path / "serving")
    settings = json.loads(tf.saved_model.load(versions.latest(base)).settings.numpy())
    # The top_k run parameter was derived as its flag is: the list, the longest list a request
    # may ask for, the evaluation's cutoffs (the compiled ones are 10, 50, 100).
    assert settings["top_k"] == 20 and settings["max_k"] >= 20
    training = json.load(open(os.path.join(published["RetrievalTrainer"]["model_run"][0]["uri"],
                                           "training.json")))
    assert training["config"]["epochs"] == 3 and 1 <= training["epochs_run"] <= 3
    assert training["config"]["refit"] is False and training["refit"] is None
    blessing = published["RecommenderEvaluator"]["blessing"][0]
    assert int(blessing["metadata"]["blessed"]) == 1
    metrics = json.load(open(os.path.join(published["RecommenderEvaluator"]["evaluation"][0]["uri"],
                                          "metrics.json")))
    assert metrics["tfma"]["validation"]["baseline"] is False
    assert "recall@20" in metrics["metrics"]["recommender"], sorted(metrics["metrics"]["recommender"])
    # The Evaluator's container was handed blank artifact types; the entrypoint filled them in.
    log = open(os.path.join(os.path.dirname(published["Evaluator"]["evaluation"][0]["uri"]),
                            "log.txt")).read()
    assert "artifact types filled in" in log and "baseline_model (empty)" in log


def test_oss_mode_refuses_constant_value_parameters_as_the_driver_does(tmp_path):
    spec = {"root": {"dag": {"tasks": {"A": {"componentRef": {"name": "a"}, "inputs": {
        "parameters": {"x": {"runtimeValue": {"constantValue": {"stringValue": "v"}}}}}}}}},
        "components": {"a": {"executorLabel": "e"}},
        "deploymentSpec": {"executors": {"e": {"container": {"command": ["true"]}}}}}
    with pytest.raises(harness.HarnessError, match="ConstantValue not implemented"):
        harness.run(spec, str(tmp_path / "root"), mode="oss", emit=lambda line: None)
