"""Level 3: the Kubeflow specs compile without a cluster, with what open-source KFP v2 and Vertex
each need (checked statically here)."""

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubeflow import entrypoint, runner
from pipeline import pipeline as pipeline_def
from pipeline.config import PipelineConfig

EXPECTED = {"InteractionsExampleGen", "CatalogueExampleGen", "StatisticsGen", "ImportSchemaGen",
            "StrictExampleValidator", "Transform", "RetrievalTrainer", "IndexBuilder",
            "RankingTrainer", "RecommenderAssembler", "ServedModel", "CandidateExamples", "Evaluator",
            "RecommenderEvaluator", "Pusher"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    runner.compile_pipeline(PipelineConfig(), str(out), image="registry.example/recsys:1",
                            data_root="gs://b/data", pipeline_root="gs://b/root", gpus=2,
                            node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"})
    spec, platform = runner.load(str(out))
    return spec, platform, out.read_text()


def _parameters(spec):
    for task in spec["root"]["dag"]["tasks"].values():
        yield from task.get("inputs", {}).get("parameters", {}).values()


def test_the_spec_is_schema_2_1_with_only_constant_parameters(compiled):
    spec, _, _ = compiled
    assert spec["schemaVersion"] == "2.1.0" and spec["pipelineInfo"]["name"] == "tfx-recommender"
    assert "pipelineSpec" not in spec  # a bare PipelineSpec, what kfp.Client accepts
    values = [p["runtimeValue"] for p in _parameters(spec) if "runtimeValue" in p]
    assert values and all(set(v) == {"constant"} for v in values)  # OSS: no constantValue
    assert set(spec["root"]["dag"]["tasks"]) == EXPECTED
    assert not [t for t in spec["root"]["dag"]["tasks"] if "Resolver" in t]
    # It parses as KFP's own PipelineSpec proto.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def test_run_parameters_are_pipeline_inputs_with_the_compiled_defaults(compiled):
    spec, _, _ = compiled
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == set(pipeline_def.RUN_PARAMETERS)
    assert inputs["data_root"]["defaultValue"] == "gs://b/data"
    assert inputs["top_k"]["defaultValue"] == PipelineConfig().top_k
    assert json.loads(inputs["retrieval"]["defaultValue"])["epochs"] == PipelineConfig().retrieval.epochs
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["InteractionsExampleGen"]["inputs"]["parameters"]["input_base"] == {
        "componentInputParameter": "data_root"}
    assert tasks["RecommenderAssembler"]["inputs"]["parameters"]["top_k"] == {
        "componentInputParameter": "top_k"}


def test_every_executor_is_a_container_running_the_project_entrypoint(compiled):
    spec, _, text = compiled
    executors = spec["deploymentSpec"]["executors"]
    for label, executor in executors.items():
        container = executor["container"]  # no importer or resolver executors
        assert container["image"] == "registry.example/recsys:1", label
        assert container["command"] == runner.ENTRYPOINT, label
        args = container["args"]
        # The component's inputs spec travels with it: the entrypoint types OSS KFP's inputs.
        assert entrypoint.INPUTS_SPEC in args and args[args.index(entrypoint.INVOCATION) + 1] == "{{$}}"
    assert "models.retrieval.trainer.run_fn" in text and "components.index.executor.Executor" in text
    assert "gs://b/data" in text


def test_gpus_on_the_trainers_only_and_their_node_pool_in_the_platform_spec(compiled):
    spec, platform, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    labels = {name: spec["components"][t["componentRef"]["name"]]["executorLabel"]
              for name, t in tasks.items()}
    for name, label in labels.items():
        accelerator = executors[label]["container"].get("resources", {}).get("accelerator")
        if name in pipeline_def.TRAINERS:
            assert accelerator == {"type": "nvidia.com/gpu", "count": "2"}, name
        else:
            assert accelerator is None, name
    kubernetes = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # Platform keys are executor labels of the spec, the trainers' only.
    assert set(kubernetes) == {labels[t] for t in pipeline_def.TRAINERS} <= set(executors)
    for settings in kubernetes.values():
        assert settings["nodeSelector"] == {"labels": {"cloud.google.com/gke-accelerator": "nvidia-l4"}}
        assert settings["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                            "effect": "NoSchedule"}]


def test_examplegens_and_the_served_model_are_never_cached(compiled):
    spec, _, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    for name in ("InteractionsExampleGen", "CatalogueExampleGen", "ServedModel"):
        assert tasks[name]["cachingOptions"] == {"enableCache": False}, name


def test_vertex_target_is_a_pipeline_job_with_its_runtime_config(tmp_path):
    out = tmp_path / "pipeline.json"
    runner.compile_pipeline(PipelineConfig(), str(out), pipeline_root="gs://b/root", target="vertex")
    job = json.loads(out.read_text())
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"
    assert job["pipelineSpec"]["schemaVersion"] == "2.1.0"
    json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    spec, platform = runner.load(str(out))
    assert set(spec["root"]["dag"]["tasks"]) == EXPECTED and platform == {}


def test_entrypoint_fills_in_the_artifact_types_oss_kfp_leaves_blank():
    schema = "title: tfx.Examples\ntype: object\n"
    invocation = {"inputs": {"artifacts": {
        "examples": {"artifacts": [{"uri": "gs://b/e/1", "type": {}},
                                   {"uri": "gs://b/e/2", "type": {"schemaTitle": "system.Artifact"}}]},
        "schema": {"artifacts": [{"uri": "gs://b/s", "type": {"instanceSchema": "title: tfx.Schema\n"}}]},
    }}, "outputs": {"outputFile": "/tmp/x/executor_output.json"}}
    spec = {"artifacts": {"examples": {"artifactType": {"instanceSchema": schema}},
                          "schema": {"artifactType": {"instanceSchema": "title: tfx.Schema\n"}}}}
    argv = ["--executor_class_path", "a.B", entrypoint.INVOCATION, json.dumps(invocation),
            entrypoint.INPUTS_SPEC, json.dumps(spec), "--runner=DirectRunner"]
    repaired_argv, repaired = entrypoint.repair_argv(argv)
    assert repaired == ["examples"]
    fixed = json.loads(repaired_argv[3])["inputs"]["artifacts"]
    assert [a["type"] for a in fixed["examples"]["artifacts"]] == [{"instanceSchema": schema}] * 2
    assert fixed["schema"]["artifacts"][0]["type"] == {"instanceSchema": "title: tfx.Schema\n"}
    assert repaired_argv[-1] == "--runner=DirectRunner"
    # What Vertex sends (typed) passes unchanged.
    assert entrypoint.repair_argv(repaired_argv) == (repaired_argv, [])


def test_cli_compile_writes_both_targets_and_refuses_a_bad_toleration(tmp_path, capsys):
    from cli import main as cli

    out = tmp_path / "p.yaml"
    assert cli.main(["compile", "--output", str(out), "--data", "gs://b/d",
                     "--gpu-toleration", "gpu=yes:NoSchedule", "--gpus", "1"]) == 0
    _, platform = runner.load(str(out))
    settings = next(iter(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()))
    assert settings["tolerations"] == [{"key": "gpu", "operator": "Equal", "effect": "NoSchedule",
                                        "value": "yes"}]
    vertex = tmp_path / "p.json"
    assert cli.main(["compile", "--target", "vertex", "--output", str(vertex)]) == 0
    assert "runtimeConfig" in json.loads(vertex.read_text())
    assert cli.main(["compile", "--output", str(out), "--gpu-toleration", "gpu"]) == 2
    assert "expected KEY[=VALUE]:EFFECT" in capsys.readouterr().err


def test_entrypoint_drops_input_artifacts_marked_empty():
    invocation = {"inputs": {"artifacts": {
        "baseline_model": {"artifacts": [{"uri": "gs://b/m", "metadata": {"empty": 1.0}}]},
        "model": {"artifacts": [{"uri": "gs://b/c", "metadata": {"blessed": 1.0}}]}}}}
    fixed, dropped = entrypoint.drop_empty(invocation)
    assert dropped == ["baseline_model"]
    assert fixed["inputs"]["artifacts"]["baseline_model"]["artifacts"] == []
    assert len(fixed["inputs"]["artifacts"]["model"]["artifacts"]) == 1


@pytest.mark.parametrize("flag", ["--serving-dir", "--data", "--pipeline-root"])
def test_cli_compile_refuses_a_local_path_the_pods_cannot_read(tmp_path, capsys, flag):
    """A local path was compiled as gs://YOUR_BUCKET/... (serving) without a word; now it is
    refused naming its flag, and nothing is written."""
    from cli import main as cli

    out = tmp_path / "p.yaml"
    assert cli.main(["compile", "--output", str(out), flag, str(tmp_path / "local")]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {tmp_path / 'local'} is a local path" in err and not out.exists()
    # Given as URIs, the same paths are compiled in (the pipeline root as Vertex's output
    # directory: a KFP spec leaves it to the submission), the others as run parameter defaults.
    job = tmp_path / "p.json"
    assert cli.main(["compile", "--target", "vertex", "--output", str(job), flag, "gs://b/x"]) == 0
    compiled = json.loads(job.read_text())
    defaults = compiled["runtimeConfig"]["parameterValues"]
    if flag == "--serving-dir":
        assert defaults["serving_dir"] == "gs://b/x"
    elif flag == "--data":
        assert defaults["data_root"] == "gs://b/x"
    else:
        assert compiled["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/x"


def test_a_request_log_is_compiled_into_the_validators_task_and_a_local_one_refused(tmp_path, capsys):
    from cli import main as cli

    out = tmp_path / "p.yaml"
    assert cli.main(["compile", "--output", str(out), "--request-log", str(tmp_path / "log")]) == 2
    assert f"--request-log {tmp_path / 'log'} is a local path" in capsys.readouterr().err
    assert not out.exists()
    job = tmp_path / "p.json"
    assert cli.main(["compile", "--target", "vertex", "--output", str(job), "--request-log",
                     "gs://b/requests/"]) == 0
    tasks = json.loads(job.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    parameters = tasks["StrictExampleValidator"]["inputs"]["parameters"]
    assert json.dumps(parameters["request_log"]).count("gs://b/requests/") == 1
