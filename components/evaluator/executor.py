"""Thin executor of the recommender evaluator."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import blessing
from models import features, records
from models.config import decode
from models.evaluation import evaluate, tfma_gate
from models.evaluation.config import EvalConfig

METRICS_FILE = "metrics.json"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = decode(EvalConfig, exec_properties["config"])
        if exec_properties.get("top_k") is not None:
            config = config.for_list(int(exec_properties["top_k"]))
        model = artifact_utils.get_single_instance(input_dict["model"])
        served = input_dict.get("baseline") or []
        result = evaluate.evaluate(
            # The holdout twin: it knows only the train split (the deployed model knows the eval split).
            path_utils.serving_model_path(model.uri),
            records.split_files(input_dict["examples"], features.TRAIN),
            records.split_files(input_dict["examples"], features.EVAL),
            catalogue_files=records.split_files(input_dict["candidates"], features.CATALOGUE),
            config=config,
            served_dir=path_utils.serving_model_path(served[0].uri) if served else None,
        )
        verdict = evaluate.blessing(result, config)
        if served:
            result["served_version"] = served[0].get_string_custom_property("served_version")
        if input_dict.get("tfma_blessing"):
            # The stock Evaluator's verdict, with its figures and failures in words.
            tfma = tfma_gate.read(artifact_utils.get_single_instance(input_dict["tfma_evaluation"]).uri)
            result["tfma"] = tfma
            tfma_blessed = artifact_utils.get_single_instance(
                input_dict["tfma_blessing"]).get_int_custom_property("blessed") == 1
            verdict = evaluate.with_verdict(verdict, "tfma_blessed", tfma_blessed,
                                            tfma_gate.reason(tfma))
        if input_dict.get("index_blessing"):
            index_blessing = artifact_utils.get_single_instance(input_dict["index_blessing"])
            verdict = evaluate.with_verdict(
                verdict, "index_blessed", index_blessing.get_int_custom_property("blessed") == 1,
                index_blessing.get_string_custom_property("reason"))
        result["blessing"] = verdict
        logging.info("Evaluation: %s", json.dumps(result))

        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        tf.io.gfile.makedirs(evaluation.uri)
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, METRICS_FILE), "w") as f:
            json.dump(result, f, indent=2)
        for name, values in result["metrics"].items():
            for metric, value in values.items():
                evaluation.set_float_custom_property(f"{name}/{metric}", float(value))

        blessing.write(artifact_utils.get_single_instance(output_dict["blessing"]),
                       verdict["blessed"], model.uri, "; ".join(verdict["reasons"]))
