"""Spec of the served-model finder: the model being served, as the evaluators' baseline."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.served import executor


class ServedModelSpec(ComponentSpec):
    PARAMETERS = {
        # The serving root: the highest complete version under <serving_dir>/recommender is served.
        "serving_dir": ExecutionParameter(type=str),
    }
    INPUTS = {
        # Interactions: the eval split the baseline must not have learned from.
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        # The served version's warm-start states (models/retrieval/warm.py), for the trainers.
        "warm_start": ChannelParameter(type=standard_artifacts.Model),
        # The statistics of the data the served version learned from, for the drift check.
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }


class ServedModel(base_component.BaseComponent):
    """Outputs the served model's holdout twin as a Model artifact, or nothing.

    In place of a Resolver node (open-source Kubeflow Pipelines v2 does not run
    them): reads the newest complete version under ``<serving_dir>/recommender``, finds the
    holdout twin it names (recommender/baseline.py) and outputs a copy in the
    layout the stock Evaluator loads (``<uri>/Format-Serving``). On the first
    run, or when the twin is gone, predates this release or learned from this
    run's eval interactions, it outputs no artifact: the stock Evaluator then
    skips its change thresholds and the recommender evaluator its comparison.
    Either way the execution's ``reason`` property says which.
    Consumers take ``outputs['model'].as_optional()``.

    ``outputs['warm_start']``: the same version's warm-start states (``assets.extra/warm_start``
    of the push: the deployed model's and its twin's), which the retrieval trainer starts from;
    nothing under the same conditions (a twin that learned from this run's eval split would
    start a holdout model that has seen it), or when the version carries none.

    ``outputs['statistics']``: the statistics of the data the served version learned from, which
    the validator compares this run's with (TFDV's drift comparators); nothing when nothing is
    served or the version carries none.
    """

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples: BaseChannel, serving_dir):
        super().__init__(spec=ServedModelSpec(
            examples=examples, serving_dir=serving_dir,
            model=types.Channel(type=standard_artifacts.Model),
            warm_start=types.Channel(type=standard_artifacts.Model),
            statistics=types.Channel(type=standard_artifacts.ExampleStatistics)))
