"""Thin executor of the candidate examples: artifacts in, models/evaluation/candidates.py, examples out."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from models import features, records
from models.config import decode
from models.evaluation import candidates
from models.evaluation.config import EvalConfig

FILE = "data_tfrecord-00000-of-00001.gz"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = decode(EvalConfig, exec_properties["config"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples, tally = candidates.build(
            path_utils.serving_model_path(model.uri),
            records.split_files(input_dict["examples"], features.TRAIN),
            records.split_files(input_dict["examples"], features.EVAL),
            config.requests, config.candidates_per_request, config.batch_size)
        out = artifact_utils.get_single_instance(output_dict["request_examples"])
        out.split_names = artifact_utils.encode_split_names([features.EVAL])
        candidates.write(examples, os.path.join(artifact_utils.get_split_uri([out], features.EVAL),
                                                FILE))
        for key, value in tally.items():
            out.set_int_custom_property(key, value)
        logging.info("Candidate examples: %s", json.dumps(tally))
