"""Thin executor of the index builder: artifacts in, plain values to the indexer, figures out."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import blessing
from models import features, holdout, records, warm_states
from models.config import decode
from models.index import indexer
from models.index.config import IndexConfig
from recommender import baseline

STATS_FILE = "index_stats.json"
EMBEDDINGS_DIR = "embeddings"


def check_top_k(top_k: int, items: int = None) -> int:
    """``top_k`` when a list of that length can be served from ``items`` catalogue items.

    Raises:
      ValueError: naming the top_k run parameter (Kubeflow runs set it past the CLI's checks).
    """
    if top_k < 1:
        raise ValueError(f"run parameter top_k must be >= 1 (the served list's length), got {top_k}")
    if items is not None and top_k > items:
        raise ValueError(f"run parameter top_k {top_k} is more than the {items} items of the "
                         f"catalogue; ask for at most {items}")
    return top_k


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 (TFX API)
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = decode(IndexConfig, exec_properties["config"])
        top_k = exec_properties.get("top_k")
        if top_k is not None:
            config = config.for_list(check_top_k(int(top_k)))
        model = artifact_utils.get_single_instance(input_dict["model"])
        transform = artifact_utils.get_single_instance(input_dict["transform_graph"])
        index = artifact_utils.get_single_instance(output_dict["index"])
        train_files = records.split_files(input_dict["examples"], features.TRAIN)
        export_dir = path_utils.serving_model_dir(index.uri)
        figures = indexer.build_index(
            model_dir=path_utils.serving_model_path(model.uri),
            catalogue_files=records.split_files(input_dict["candidates"], features.CATALOGUE),
            # The deployed servable knows every interaction; its twin only the train split.
            interaction_files=train_files + records.split_files(input_dict["examples"], features.EVAL),
            export_dir=export_dir,
            config=config,
            work_dir=os.path.join(index.uri, EMBEDDINGS_DIR),
            transform_dir=transform.uri,
            make_pipeline=self._make_beam_pipeline,
            holdout=(holdout.holdout_path(model.uri), train_files, holdout.holdout_dir(export_dir)),
        )
        logging.info("Index: %s", json.dumps(figures))
        # The retrieval models' warm-start states travel with the index to the recommender.
        baseline.carry(os.path.join(model.uri, warm_states.ARTIFACT_DIR),
                       os.path.join(index.uri, warm_states.ARTIFACT_DIR))
        if top_k is not None:
            check_top_k(int(top_k), int(figures["items"]))
        for key, value in figures.items():
            if isinstance(value, str):
                index.set_string_custom_property(key, value)
            else:
                index.set_float_custom_property(key, float(value))
        tf.io.gfile.makedirs(index.uri)
        with tf.io.gfile.GFile(os.path.join(index.uri, STATS_FILE), "w") as f:
            json.dump(figures, f, indent=2)

        blessing.write(artifact_utils.get_single_instance(output_dict["blessing"]),
                       figures["blessed"], index.uri, figures["reason"])
