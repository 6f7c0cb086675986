"""Thin executor of the recommender assembler: artifacts in, recommender/assembly.py, figures out."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from models import features, holdout, records, warm_states
from models.config import decode
from recommender import assembly, baseline
from recommender.config import RerankConfig

ASSEMBLY_FILE = "assembly.json"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        rules = decode(RerankConfig, exec_properties["config"])
        top_k = int(exec_properties["top_k"])
        rules = rules.for_list(top_k)  # a run's top_k parameter may exceed the compiled max_k
        index_uri = artifact_utils.get_single_instance(input_dict["index"]).uri
        ranker_uri = artifact_utils.get_single_instance(input_dict["ranker"]).uri
        model = artifact_utils.get_single_instance(output_dict["model"])
        train = records.split_files(input_dict["examples"], features.TRAIN)
        export_dir = path_utils.serving_model_dir(model.uri)
        twin_dir = path_utils.serving_model_dir(
            artifact_utils.get_single_instance(output_dict["holdout_model"]).uri)
        held_out = records.split_files(input_dict["examples"], features.EVAL)
        index_twin = os.path.join(index_uri, holdout.HOLDOUT)
        figures = {}
        if tf.io.gfile.isdir(index_twin):
            # The twin knows the train split only; the deployed model every interaction, with
            # the EASE settings chosen on the twin's eval split.
            figures["holdout"] = assembly.assemble(
                index_twin, holdout.holdout_path(ranker_uri), train, rules, top_k, twin_dir,
                held_out_files=held_out)
            figures["deployed"] = assembly.assemble(
                path_utils.serving_model_path(index_uri), path_utils.serving_model_path(ranker_uri),
                train + held_out, rules, top_k, export_dir, fusion=figures["holdout"])
        else:
            figures["deployed"] = assembly.assemble(
                path_utils.serving_model_path(index_uri), path_utils.serving_model_path(ranker_uri),
                train, rules, top_k, export_dir, held_out_files=held_out)
        if "holdout" not in figures:
            # Nothing was refitted: the deployed model knows the train split only, its own twin.
            io_utils.copy_dir(export_dir, twin_dir)
        baseline.write_provenance(export_dir, twin_dir)
        # What a later run starts from once this version is served (TF Serving reads no assets.extra),
        # and the data it learned from, so that a run on the same data does not start from it.
        states = os.path.join(export_dir, baseline.WARM_START)
        carried = baseline.carry(os.path.join(index_uri, warm_states.ARTIFACT_DIR), states,
                                 warm_states.RETRIEVAL_FILES)
        carried = baseline.carry(os.path.join(ranker_uri, warm_states.ARTIFACT_DIR), states,
                                 (warm_states.RANKER,)) or carried
        if carried:
            baseline.write_learned_from(export_dir, input_dict["examples"][0])
        if input_dict.get("statistics"):
            baseline.carry(input_dict["statistics"][0].uri, os.path.join(export_dir, baseline.STATISTICS))
        model.set_int_custom_property("use_ranker", int(figures["deployed"]["use_ranker"]))
        model.set_float_custom_property("ease_weight",
                                        float(figures["deployed"]["ease"].get("weight", 0.0)))
        tf.io.gfile.makedirs(model.uri)
        with tf.io.gfile.GFile(os.path.join(model.uri, ASSEMBLY_FILE), "w") as f:
            json.dump(figures, f, indent=2)
