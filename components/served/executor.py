"""Thin executor of the served-model finder: recommender/baseline.py decides, this copies."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

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
        if served.twin is None:
            # No artifact: consumers see an empty (optional) input.
            model.set_int_custom_property(EMPTY, 1)
            model.set_string_custom_property(REASON, served.reason)
            result.output_artifacts["model"].SetInParent()
            return result
        io_utils.copy_dir(served.twin, path_utils.serving_model_dir(model.uri))
        model.set_string_custom_property(VERSION, served.version)
        model.set_string_custom_property(REASON, served.reason)
        result.output_artifacts["model"].artifacts.append(model.mlmd_artifact)
        return result
