"""The two ExampleGens: the stock FileBasedExampleGen with its splits named in the component and
the data section carried as one JSON string.

They are FileBasedExampleGens (same driver, outputs, split naming and ML Metadata properties,
and Kubeflow's compilers treat them as ExampleGens: Vertex runs their driver step), with one
execution parameter added to the stock spec: ``data_config``, the data section's JSON
(``models.config.encode``), which ML Metadata records and the Kubeflow UI shows as it is. The
stock spec only takes a ``CustomConfig`` proto, whose ``Any`` would wrap the same JSON twice more.

What stays from the stock spec, because TFX reads it:
- each split's ``pattern`` ("*": every file of the data folder): the driver fingerprints the files
  it matches, so new data under the same folder is a new input and is not taken from the cache;
  a span pattern (``{SPAN}``) is where TFX's span resolution will come in;
- the catalogue's one output split with ``hash_buckets=1``: with one input split TFX's default is a
  2:1 train/eval hash split, and an output split is named only through a ``SplitConfig``.
"""

from __future__ import annotations

from typing import Sequence

from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import component_spec, standard_artifacts, standard_component_specs

from components.example_gen import executor
from models import features
from models.config import encode
from models.data.config import DataConfig

DATA_CONFIG_KEY = executor.DATA_CONFIG_KEY


class DataExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """The stock FileBasedExampleGen spec plus the data section's JSON."""

    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        DATA_CONFIG_KEY: component_spec.ExecutionParameter(type=str),
    }


class _DataExampleGen(FileBasedExampleGen):
    SPEC_CLASS = DataExampleGenSpec
    SPLITS: Sequence[str] = ()

    def __init__(self, input_base: str, data: DataConfig):
        """An ExampleGen reading ``input_base`` (any supported layout) with the data section ``data``."""
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name=name, pattern="*") for name in self.SPLITS])
        if len(self.SPLITS) == 1:
            output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
                splits=[example_gen_pb2.SplitConfig.Split(name=self.SPLITS[0], hash_buckets=1)]))
        else:  # the executor assigns rows to the input splits (by time)
            output_config = example_gen_pb2.Output()
        spec = DataExampleGenSpec(
            input_base=input_base, input_config=input_config, output_config=output_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            **{DATA_CONFIG_KEY: encode(data)})
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


class InteractionsExampleGen(_DataExampleGen):
    """Interactions with their user's and item's features and history, split by time into
    train and eval."""

    SPLITS = (features.TRAIN, features.EVAL)
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.InteractionsExecutor)


class CatalogueExampleGen(_DataExampleGen):
    """Every catalogue item with its features, in one split."""

    SPLITS = (features.CATALOGUE,)
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.CatalogueExecutor)
