"""ExampleGen executors that read any supported layout and split by time.

They extend the stock ``BaseExampleGenExecutor``, so output format, split
naming, payload format and ML Metadata properties are TFX's own; only the
generation of the splits is ours. Both take ``input_base`` (the data folder)
and the data section (``models.data.config.DataConfig``) as its JSON text in
``data_config`` (components/example_gen/component.py), read once per execution.

A data folder of dated spans is read as the window the data section names
(``models/data/spans.py``), chosen here, when the execution runs: a scheduled run
reads the spans that exist at its tick (Kubeflow's open-source backend never runs
ExampleGen's span-resolving driver). The window is recorded on the output.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

import apache_beam as beam
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from models import features
from models.config import decode
from models.data import beam as data_beam
from models.data import schema, spans
from models.data.config import DataConfig

DATA_CONFIG_KEY = "data_config"


def data_config(exec_properties: Dict[str, Any]) -> DataConfig:
    """The data section an ExampleGen execution was given (its defaults when none was)."""
    return decode(DataConfig, exec_properties.get(DATA_CONFIG_KEY) or None)


def _split_names(exec_properties: Dict[str, Any]):
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    return [split.name for split in input_config.splits]


class _Checked(BaseExampleGenExecutor):
    """Runs the stock ExampleGen, then reads the validation report the pipeline wrote into the
    Examples artifact (``validation_report.json``): a fatal problem or more bad rows than
    allowed fails the execution (nothing is published) with file, line and field."""

    REPORT = "validation_report.json"

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX API)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        self._report = os.path.join(examples.uri, self.REPORT)
        self._config = data_config(exec_properties)
        base = exec_properties["input_base"]
        window, total = spans.choose(base, self._config.span_pattern, self._config.spans)
        self._folders = [span.path for span in window] or [base]
        if window:
            logging.info("%s: %s", base, spans.describe(window, total))
        super().Do(input_dict, output_dict, exec_properties)
        report = data_beam.check(self._report, self._config.max_bad_row_fraction)
        if window:
            spans.record(examples, window)
        logging.info("%s: %s", base, report.summary())
        if report.skipped or report.warnings:
            logging.warning("%s", report.summary())


class InteractionsExecutor(_Checked):
    """Interactions joined with user and item features and the user's history, split by time
    into train and eval, all in Beam (models/data/beam/)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        raise NotImplementedError("splits are generated together in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX API)
        names = _split_names(exec_properties)
        if sorted(names) != sorted([features.TRAIN, features.EVAL]):
            raise ValueError(f"interactions ExampleGen needs input splits "
                             f"'{features.TRAIN}' and '{features.EVAL}', got {names}")
        config = self._config
        out = data_beam.interactions(pipeline, self._folders, config.eval_fraction,
                                     config.split_strategy, schema.domains(), config.range_bytes,
                                     config.side_input_bytes)
        data_beam.write_report(pipeline, out.problems, self._report)
        return out.splits


class CatalogueExecutor(_Checked):
    """Every catalogue item with its features, interactions or not, in one split; only the
    items file is read."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX API)
        raise NotImplementedError("the catalogue is generated in GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX API)
        (name,) = _split_names(exec_properties)
        items, problems = data_beam.catalogue(pipeline, self._folders, schema.domains(),
                                              self._config.range_bytes)
        data_beam.write_report(pipeline, problems, self._report)
        return {name: items}
