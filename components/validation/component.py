"""ExampleValidator whose executor fails the run on anomalies (same spec as the stock one)."""

from tfx.components import ExampleValidator
from tfx.dsl.components.base import executor_spec

from components.validation import executor


class StrictExampleValidator(ExampleValidator):
    """Stock ExampleValidator; anomalies raise a DataError naming each feature."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
