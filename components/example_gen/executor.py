"""ExampleGen executors that read any supported layout and split by time.

They extend the stock ``BaseExampleGenExecutor``, so output format, split
naming, payload format and ML Metadata properties are TFX's own; only the
generation of the splits is ours. Both take ``input_base`` (the data folder)
and the data section (``models.data.config.DataConfig``) as ``custom_config``:
ExampleGen's spec only takes a ``CustomConfig`` proto, so the section's JSON
text (``models.config.encode``) travels in it as a ``StringValue``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

import apache_beam as beam
from google.protobuf import wrappers_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from models import features
from models.config import decode, encode
from models.data import examples, readers, splits
from models.data.config import DataConfig


def pack_config(data: DataConfig) -> example_gen_pb2.CustomConfig:
    """The data section as ExampleGen's ``custom_config`` proto (its JSON text in an Any)."""
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(wrappers_pb2.StringValue(value=encode(data)))
    return config


def data_config(exec_properties: Dict[str, Any]) -> DataConfig:
    """The data section an ExampleGen execution was given (its defaults when none was)."""
    raw = exec_properties.get("custom_config")
    if not raw:
        return DataConfig()
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(raw, config)
    text = wrappers_pb2.StringValue()
    config.custom_config.Unpack(text)
    return decode(DataConfig, text.value)


def _read(exec_properties: Dict[str, Any], config: DataConfig) -> readers.Dataset:
    dataset = readers.read_dataset(exec_properties["input_base"], config.max_bad_row_fraction)
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
        config = data_config(exec_properties)
        dataset = _read(exec_properties, config)
        indices = splits.temporal_split(dataset.interactions, config.eval_fraction,
                                        config.split_strategy)
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
        dataset = _read(exec_properties, data_config(exec_properties))
        return {name: (pipeline
                       | "Catalogue" >> beam.Create([None])
                       | "ToExamples" >> beam.FlatMap(lambda _: examples.catalogue_examples(dataset)))}

