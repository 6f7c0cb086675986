"""ExampleValidator whose executor fails the run on anomalies and on drift (the stock spec plus
the served data's statistics and the drift gate's switch)."""

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
        # 0: drift is measured and reported but stops nothing (--accept-drift).
        executor.DRIFT_GATE: ExecutionParameter(type=int, optional=True),
    }


class StrictExampleValidator(ExampleValidator):
    """Stock ExampleValidator; schema anomalies, and drift beyond the schema's comparators
    against the served version's data, raise a DataError naming each feature."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, statistics, schema, baseline_statistics=None, drift_gate: bool = True):
        spec = StrictExampleValidatorSpec(
            statistics=statistics, schema=schema, baseline_statistics=baseline_statistics,
            **{executor.DRIFT_GATE: int(drift_gate)},
            anomalies=channel_utils.as_channel([standard_artifacts.ExampleAnomalies()]))
        base_component.BaseComponent.__init__(self, spec=spec)
