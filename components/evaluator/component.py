"""Spec of the recommender evaluator: held-out top-K metrics and a blessing for the Pusher."""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.evaluator import executor


class RecommenderEvaluatorSpec(ComponentSpec):
    PARAMETERS = {
        # dataclasses.asdict(EvalConfig) as JSON: recorded in ML Metadata.
        "config": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "candidates": ChannelParameter(type=standard_artifacts.Examples),
        # The index builder's verdict on its recall; the model is blessed only with it.
        "index_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class RecommenderEvaluator(base_component.BaseComponent):
    """Scores the recommender servable on the eval split against popularity.

    The stock Evaluator (TFMA) scores one prediction per example; a recommender
    is judged by the list it returns for a user, against every held-out item of
    that user. This component calls the servable's own ``serving_default`` and
    ``retrieve`` signatures for every eval user, computes Recall/NDCG/HR/MRR and
    coverage (models/evaluation/metrics.py), and writes a ModelBlessing in
    the stock Pusher's format: the model is pushed only when it beats
    popularity by the configured lift and, given ``index_blessing``, the index
    builder blessed its index (recall against exact search).
    """

    SPEC_CLASS = RecommenderEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: BaseChannel, examples: BaseChannel, candidates: BaseChannel,
                 config: str, index_blessing: Optional[BaseChannel] = None):
        super().__init__(spec=RecommenderEvaluatorSpec(
            model=model, examples=examples, candidates=candidates, config=config,
            index_blessing=index_blessing,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
