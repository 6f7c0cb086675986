"""ExampleGen executors that read any supported layout and split by time.

They extend the stock ``BaseExampleGenExecutor``, so output format, split
naming, payload format and ML Metadata properties are TFX's own; only the
generation of the splits is ours. Both take ``input_base`` (the data folder)
and the ``data`` section of the pipeline config as ``custom_config``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

import apache_beam as beam
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from models import features
from models.data import examples, readers, splits


def pack_config(values: dict) -> example_gen_pb2.CustomConfig:
    """The data config as ExampleGen's ``custom_config`` proto (a Struct in an Any)."""
    struct = struct_pb2.Struct()
    struct.update(values)
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def _data_config(exec_properties: Dict[str, Any]) -> dict:
    raw = exec_properties.get("custom_config")
    if not raw:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(raw, config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    return json_format.MessageToDict(struct)


def _read(exec_properties: Dict[str, Any], config: dict) -> readers.Dataset:
    dataset = readers.read_dataset(exec_properties["input_base"],
                                   config.get("max_bad_row_fraction", 0.0))
    logging.info("Read %d interactions (%s layout): %s", len(dataset), dataset.layout,
                 dataset.report.summary())
    return dataset


def _split_names(exec_properties: Dict[str, Any]):
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    return [split.name for split in input_config.splits]


class InteractionsExecutor(BaseExampleGenExecutor):
    """Interactions joined with user and item features and the user's history, split by time
    into train and eval."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        raise NotImplementedError("splits are generated together in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX API)
        names = _split_names(exec_properties)
        if sorted(names) != sorted([features.TRAIN, features.EVAL]):
            raise ValueError(f"interactions ExampleGen needs input splits "
                             f"'{features.TRAIN}' and '{features.EVAL}', got {names}")
        config = _data_config(exec_properties)
        dataset = _read(exec_properties, config)
        indices = splits.temporal_split(dataset.interactions, config.get("eval_fraction", 0.2),
                                        config.get("split_strategy", "per_user"))
        histories = splits.Histories(dataset.interactions, features.MAX_HISTORY)
        return {
            name: (pipeline
                   | f"Indices[{name}]" >> beam.Create([indices[name]])
                   | f"ToExamples[{name}]" >> beam.FlatMap(
                       lambda idx: examples.interaction_examples(dataset, idx, histories)))
            for name in names
        }


class CatalogueExecutor(BaseExampleGenExecutor):
    """Every catalogue item with its features, interactions or not, in one split."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        raise NotImplementedError("the catalogue is generated in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX API)
        (name,) = _split_names(exec_properties)
        dataset = _read(exec_properties, _data_config(exec_properties))
        return {name: (pipeline
                       | "Catalogue" >> beam.Create([None])
                       | "ToExamples" >> beam.FlatMap(lambda _: examples.catalogue_examples(dataset)))}

