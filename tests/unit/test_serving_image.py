"""Level 1: kubeflow/serving: the ScaNN image's source edits and the Kubernetes manifests.

The Docker build itself (bazel, hours) is not run here; these tests check the
edits on files shaped like TF Serving 2.16's and ScaNN's BUILD files, and that
the manifests and model config agree with each other, with the clients and
with where the Kubeflow pipeline pushes (the model config is parsed with TF
Serving's own proto).
"""

import importlib.util
import os

import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kubeflow import runner
from pipeline.config import PipelineConfig
from recommender import remote
from tests.support import ROOT

SERVING_DIR = os.path.join(ROOT, "kubeflow", "serving")


def _load_script(name: str):
    # kubeflow/serving/ is build context for the images, not part of the Python package.
    spec = importlib.util.spec_from_file_location(name, os.path.join(SERVING_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


link = _load_script("link_scann_ops")

MODEL_SERVERS_BUILD = '''\
SUPPORTED_TENSORFLOW_OPS = if_v2([]) + if_not_v2([
    "@org_tensorflow//tensorflow/contrib:contrib_kernels",
]) + [
    "@org_tensorflow_text//tensorflow_text:ops_lib",
]

cc_library(
    name = "tensorflow_model_server_main_lib",
    deps = SUPPORTED_TENSORFLOW_OPS,
)
'''
OSS_WRAPPERS_BUILD = '''\
cc_library(
    name = "tf_dependency",
    tags = ["local"],
    deps = [
        "@local_config_tf//:libtensorflow_framework",
        "@local_config_tf//:tf_header_lib",
    ],
)
'''
SCANN_OPS_BUILD = '''\
load("@pybind11_bazel//:build_defs.bzl", "pybind_library")

package(default_visibility = ["//visibility:public"])

cc_library(
    name = "scann_ops",
    srcs = ["scann_ops.cc"],
)

cc_library(
    name = "scann_ops_kernels",
    srcs = ["kernels/scann_ops.cc"],
)

pybind_library(
    name = "scann_npy",
    srcs = ["scann_npy.cc"],
    deps = [
        ":scann",
    ],
)
'''


def _write(root, relative, text):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def trees(tmp_path):
    serving, scann = str(tmp_path / "serving"), str(tmp_path / "scann")
    _write(serving, "WORKSPACE", 'workspace(name = "tf_serving")\n')
    _write(serving, "tensorflow_serving/model_servers/BUILD", MODEL_SERVERS_BUILD)
    _write(scann, "scann/oss_wrappers/BUILD.bazel", OSS_WRAPPERS_BUILD)
    _write(scann, "scann/scann_ops/cc/BUILD.bazel", SCANN_OPS_BUILD)
    return serving, scann


def _read(root, relative):
    with open(os.path.join(root, relative)) as f:
        return f.read()


def test_edits_link_the_ops_and_running_twice_changes_nothing(trees, capsys):
    serving, scann = trees
    assert link.main([serving, scann]) == 0
    workspace = _read(serving, "WORKSPACE")
    assert 'local_repository(\n    name = "com_google_scann",' in workspace
    assert f'path = "{os.path.abspath(scann)}"' in workspace
    ops = _read(serving, "tensorflow_serving/model_servers/BUILD")
    assert ('SUPPORTED_TENSORFLOW_OPS = ["@com_google_scann//scann/scann_ops/cc:scann_ops_static"]'
            ' + if_v2([])') in ops
    wrappers = _read(scann, "scann/oss_wrappers/BUILD.bazel")
    assert "@local_config_tf" not in wrappers and link.TF_IN_SERVER in wrappers
    cc = _read(scann, "scann/scann_ops/cc/BUILD.bazel")
    assert "pybind" not in cc
    assert 'name = "scann_ops_static"' in cc and '":scann_ops_kernels",' in cc
    assert 'name = "scann_ops"' in cc  # the targets it links are kept
    before = [_read(serving, "WORKSPACE"), ops, wrappers, cc]
    assert link.main([serving, scann]) == 0
    assert "already present" in capsys.readouterr().out
    after = [_read(serving, "WORKSPACE"), _read(serving, "tensorflow_serving/model_servers/BUILD"),
             _read(scann, "scann/oss_wrappers/BUILD.bazel"),
             _read(scann, "scann/scann_ops/cc/BUILD.bazel")]
    assert after == before


def test_an_unexpected_layout_stops_with_the_file_named(trees, capsys):
    serving, scann = trees
    _write(serving, "tensorflow_serving/model_servers/BUILD", "cc_library(name = 'x')\n")
    assert link.main([serving, scann]) == 1
    err = capsys.readouterr().err
    assert "model_servers/BUILD: expected one 'SUPPORTED_TENSORFLOW_OPS = ' assignment" in err
    assert link.main([serving, os.path.join(scann, "nowhere")]) == 1


K8S = os.path.join(ROOT, "kubeflow", "serving", "k8s")


def _yaml(*parts):
    with open(os.path.join(K8S, *parts)) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def test_model_config_serves_where_the_kubeflow_pipeline_pushes():
    with open(os.path.join(K8S, "base", "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == remote.DEFAULT_MODEL and model.model_platform == "tensorflow"
    assert model.base_path == PipelineConfig(serving_dir=runner.DEFAULT_SERVING_DIR).push_dir


def test_deployment_ports_probe_and_images_agree():
    deployment, service = _yaml("base", "tf-serving.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    image, tag = container["image"].split(":")
    assert image == "tensorflow/serving" and tag.startswith(".".join(tf.__version__.split(".")[:2]))
    args = dict(a.lstrip("-").split("=", 1) for a in container["args"])
    assert (args["port"], args["rest_api_port"]) == ("8500", "8501")  # the clients' defaults
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/recommender"
    (mount,) = container["volumeMounts"]
    assert args["model_config_file"] == f"{mount['mountPath']}/models.config"
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    (kustomization,) = _yaml("base", "kustomization.yaml")
    (generated,) = kustomization["configMapGenerator"]
    assert volume["configMap"]["name"] == generated["name"] and generated["files"] == ["models.config"]
    (overlay,) = _yaml("scann", "kustomization.yaml")
    (swap,) = overlay["images"]
    assert swap["name"] == image and swap["newTag"] == tag and overlay["resources"] == ["../base"]
