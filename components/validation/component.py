"""ExampleValidator whose executor fails the run on anomalies, on drift and on serving skew (the
stock spec plus the served data's statistics, a request log and the gate's switch)."""

from typing import Optional

from tfx.components import ExampleValidator
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.validation import executor

BASELINE_STATISTICS = "baseline_statistics"


class StrictExampleValidatorSpec(standard_component_specs.ExampleValidatorSpec):
    INPUTS = {
        **standard_component_specs.ExampleValidatorSpec.INPUTS,
        # The statistics of the data the served version learned from (components/served).
        BASELINE_STATISTICS: ChannelParameter(type=standard_artifacts.ExampleStatistics,
                                              optional=True),
    }
    PARAMETERS = {
        **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
        # 0: drift and skew are measured and reported but stop nothing (--accept-drift).
        executor.DRIFT_GATE: ExecutionParameter(type=int, optional=True),
        # A log of served requests (recommender/request_log.py): "" for none.
        executor.REQUEST_LOG: ExecutionParameter(type=str, optional=True),
    }


class StrictExampleValidator(ExampleValidator):
    """Stock ExampleValidator; schema anomalies, drift beyond the schema's comparators against
    the served version's data, and skew beyond them against a log of served requests, raise a
    DataError naming each feature."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, statistics, schema, baseline_statistics=None, drift_gate: bool = True,
                 request_log: Optional[str] = None):
        spec = StrictExampleValidatorSpec(
            statistics=statistics, schema=schema, baseline_statistics=baseline_statistics,
            **{executor.DRIFT_GATE: int(drift_gate), executor.REQUEST_LOG: request_log or ""},
            anomalies=channel_utils.as_channel([standard_artifacts.ExampleAnomalies()]))
        base_component.BaseComponent.__init__(self, spec=spec)
