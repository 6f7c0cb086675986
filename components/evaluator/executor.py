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

from components import blessing
from models import features, holdout, records
from models.config import decode
from models.evaluation import evaluate
from models.evaluation.config import EvalConfig

METRICS_FILE = "metrics.json"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = decode(EvalConfig, exec_properties["config"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        catalogue = records.read_columns(records.split_files(input_dict["candidates"], features.CATALOGUE),
                                    {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string)})
        result = evaluate.evaluate(
            # The twin that knows only the train split: the deployed model knows the eval split.
            holdout.holdout_path(model.uri),
            records.split_files(input_dict["examples"], features.TRAIN),
            records.split_files(input_dict["examples"], features.EVAL),
            num_items=len(catalogue[features.ITEM_ID]),
            config=config,
        )
        verdict = evaluate.blessing(result, config.gate_metric, config.min_lift_over_popularity)
        if input_dict.get("index_blessing"):
            index_blessing = artifact_utils.get_single_instance(input_dict["index_blessing"])
            verdict = evaluate.with_index_verdict(
                verdict, index_blessing.get_int_custom_property("blessed") == 1,
                index_blessing.get_string_custom_property("reason"))
        result["blessing"] = verdict
        logging.info("Evaluation: %s", json.dumps(result))

        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, METRICS_FILE), "w") as f:
            json.dump(result, f, indent=2)
        for name, values in result["metrics"].items():
            for metric, value in values.items():
                evaluation.set_float_custom_property(f"{name}/{metric}", float(value))

        blessing.write(artifact_utils.get_single_instance(output_dict["blessing"]),
                       verdict["blessed"], model.uri, "; ".join(verdict["reasons"]))
