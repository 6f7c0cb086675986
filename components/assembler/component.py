"""Spec of the recommender assembler: index + ranker + interactions + rules -> the servable."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.assembler import executor


class RecommenderAssemblerSpec(ComponentSpec):
    PARAMETERS = {
        # The re-ranking section (models.config.encode(RerankConfig)): recorded in ML Metadata.
        "config": ExecutionParameter(type=str),
        "top_k": ExecutionParameter(type=int),
    }
    INPUTS = {
        "index": ChannelParameter(type=standard_artifacts.Model),
        "ranker": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        # The interactions' statistics, carried in the export for the next run's drift check.
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "holdout_model": ChannelParameter(type=standard_artifacts.Model),
    }


class RecommenderAssembler(base_component.BaseComponent):
    """Puts retrieve -> rank -> re-rank rules into the one SavedModel TF Serving serves.

    Inputs: ``index`` (the IndexBuilder's servable and its holdout twin),
    ``ranker`` (the ranking Trainer's export for each), ``examples``
    (interactions: the item tables the ranker's features read and each user's
    dislikes; every split for the deployed model, 'train' for the twin).
    Parameters: ``config``, the re-ranking rules; ``top_k``, the list length.

    Outputs, both in the layout the Pusher and the stock Evaluator load
    (``<uri>/Format-Serving``): ``model``, the deployed recommender, and
    ``holdout_model``, its twin built from the train split only, which the
    evaluators score on the eval split (models/holdout.py). The deployed model
    names its twin in ``assets.extra/`` so that, once pushed and served, later
    runs can compare with it (recommender/baseline.py), and carries the warm-start states
    and the ``statistics`` of the data it learned from there (the next run's warm start and
    drift check).

    A rule change reruns this step, the Evaluator and the Pusher only: both
    trainers' inputs and parameters are unchanged, so TFX takes them from the cache.
    """

    SPEC_CLASS = RecommenderAssemblerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, index: BaseChannel, ranker: BaseChannel, examples: BaseChannel,
                 config: str, top_k: int, statistics: BaseChannel = None):
        super().__init__(spec=RecommenderAssemblerSpec(
            index=index, ranker=ranker, examples=examples, config=config, top_k=top_k,
            statistics=statistics,
            model=types.Channel(type=standard_artifacts.Model),
            holdout_model=types.Channel(type=standard_artifacts.Model)))
