"""Level 3: the Kubeflow Pipelines v2 spec compiles without a cluster and has the right shape."""

import yaml

from kubeflow import runner
from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig

EXPECTED = {"InteractionsExampleGen", "CatalogueExampleGen", "StatisticsGen", "ImportSchemaGen",
            "StrictExampleValidator", "Transform", "RetrievalTrainer", "IndexBuilder",
            "RankingTrainer", "RecommenderAssembler", "ServedModel", "CandidateExamples", "Evaluator",
            "RecommenderEvaluator", "Pusher"}


def test_compiled_spec_has_every_component_and_gpus_on_trainers(tmp_path):
    path = runner.compile_pipeline(PipelineConfig(), str(tmp_path / "pipeline.yaml"),
                                   image="registry.example/recsys:1", data_root="gs://b/data",
                                   pipeline_root="gs://b/root")
    with open(path) as f:
        spec = yaml.safe_load(f)
    # A bare PipelineSpec (what kfp.Client accepts), not a Vertex PipelineJob wrapper.
    assert "pipelineSpec" not in spec and spec["pipelineInfo"]["name"] == "tfx-recommender"
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == EXPECTED
    executors = spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {"registry.example/recsys:1"}
    for task_name, task in tasks.items():
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        container = executors[label]["container"]
        accelerator = container.get("resources", {}).get("accelerator")
        if task_name in pipeline_def.TRAINERS:
            assert accelerator == {"type": "nvidia.com/gpu", "count": "1"}, task_name
        else:
            assert accelerator is None, task_name
    # The served model is read anew every run, whatever the pipeline's cache setting.
    assert tasks["ServedModel"]["cachingOptions"] == {"enableCache": False}
    assert "Resolver" not in " ".join(tasks)  # open-source KFP v2 does not run Resolver nodes
    text = open(path).read()
    # User code by dotted path into the installed package; custom executors likewise.
    assert "models.retrieval.trainer.run_fn" in text
    assert "models.ranking.trainer.run_fn" in text
    assert "components.index.executor.Executor" in text
    assert "gs://b/data" in text


def test_cli_compile_writes_the_spec(tmp_path):
    from cli import main as cli

    out = tmp_path / "p.yaml"
    assert cli.main(["compile", "--output", str(out), "--data", "gs://b/d"]) == 0
    assert "RankingTrainer" in out.read_text()
