"""Thin executor of the served-model finder: recommender/baseline.py decides, this copies."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.proto.orchestration import execution_result_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from models import features, records
from models.evaluation import metrics
from recommender import baseline, servable
from recommender.config import base_of

REASON = "reason"
VERSION = "served_version"
WARM_REASON = "warm_start"
# On Kubeflow, TFX's container entrypoint publishes every declared output whatever Do returns: an
# artifact marked EMPTY = 1 stands for "no artifact", and the project's entrypoint
# (kubeflow/entrypoint.py) drops it from the inputs of the tasks that read it.
EMPTY = "empty"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> Optional[execution_result_pb2.ExecutorOutput]:
        self._log_startup(input_dict, output_dict, exec_properties)
        held = records.read_columns(records.split_files(input_dict["examples"], features.EVAL))
        served = baseline.check_twin(
            baseline.find(base_of(exec_properties["serving_dir"])),
            metrics.group_by_user(held[features.USER_ID], held[features.ITEM_ID]),
            ("serving_default", servable.SCORE_EXAMPLES))
        logging.info("Baseline: %s", served.reason if served.twin else f"none: {served.reason}")
        result = execution_result_pb2.ExecutorOutput()
        result.execution_properties[REASON].string_value = served.reason
        result.execution_properties[VERSION].string_value = served.version or ""
        model = artifact_utils.get_single_instance(output_dict["model"])
        warm = artifact_utils.get_single_instance(output_dict["warm_start"])
        states, why = baseline.warm_start(served, input_dict["examples"][0])
        logging.info("Warm start: %s", why if states else f"none: {why}")
        result.execution_properties[WARM_REASON].string_value = why if states else f"cold: {why}"
        if states is None:
            _nothing(result, "warm_start", warm, why)
        else:
            io_utils.copy_dir(states, path_utils.serving_model_dir(warm.uri))
            _published(result, "warm_start", warm, served.version, why)
        statistics = artifact_utils.get_single_instance(output_dict["statistics"])
        learned = baseline.statistics_dir(served)
        if learned is None:
            _nothing(result, "statistics", statistics, served.reason if served.path is None else
                     f"served version {served.version} carries no statistics (an older release)")
        else:
            io_utils.copy_dir(learned, statistics.uri)
            names = [name.rstrip("/") for name in tf.io.gfile.listdir(learned)]
            statistics.split_names = artifact_utils.encode_split_names(sorted(
                name[len("Split-"):] for name in names if name.startswith("Split-")))
            _published(result, "statistics", statistics, served.version,
                       f"the data served version {served.version} learned from")
        if served.twin is None:
            _nothing(result, "model", model, served.reason)
            return result
        io_utils.copy_dir(served.twin, path_utils.serving_model_dir(model.uri))
        _published(result, "model", model, served.version, served.reason)
        return result


def _nothing(result, key: str, artifact, reason: str) -> None:
    """No artifact under ``key``: consumers see an empty (optional) input."""
    artifact.set_int_custom_property(EMPTY, 1)
    artifact.set_string_custom_property(REASON, reason)
    result.output_artifacts[key].SetInParent()


def _published(result, key: str, artifact, version: str, reason: str) -> None:
    """``artifact`` published under ``key``, stamped with the served version and its own reason."""
    artifact.set_string_custom_property(VERSION, version)
    artifact.set_string_custom_property(REASON, reason)
    result.output_artifacts[key].artifacts.append(artifact.mlmd_artifact)
