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
        # The served list's length (a Kubeflow run parameter): the cutoffs and the gate follow it.
        "top_k": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "candidates": ChannelParameter(type=standard_artifacts.Examples),
        # The index builder's verdict on its recall; the model is blessed only with it.
        "index_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        # The served model's holdout twin (components/served); absent on a first run.
        "baseline": ChannelParameter(type=standard_artifacts.Model, optional=True),
        # The stock Evaluator's (TFMA) output and verdict; the model is blessed only with both.
        "tfma_evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        "tfma_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class RecommenderEvaluator(base_component.BaseComponent):
    """Scores whole lists on the eval split: the model, popularity and the served model.

    The stock Evaluator (TFMA) scores one prediction per example and gates the
    ranking of retrieved candidates; a recommender is also judged by the list
    it returns for a user out of the whole catalogue, against every held-out
    item of that user. This component calls the holdout servable's own
    ``serving_default`` and ``retrieve`` signatures, and the served model's
    twin's (``baseline``, when there is one), for every eval user; computes
    Recall/NDCG/HR/MAP@K, MRR, coverage, intra-list diversity and novelty
    (models/evaluation/metrics.py); and writes the ModelBlessing the Pusher
    reads: the model is pushed only when it beats popularity by the configured
    lift, is not worse than the served model beyond the tolerance, and, given
    them, the stock Evaluator and the index builder blessed it too.
    """

    SPEC_CLASS = RecommenderEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: BaseChannel, examples: BaseChannel, candidates: BaseChannel,
                 config: str, index_blessing: Optional[BaseChannel] = None,
                 baseline: Optional[BaseChannel] = None,
                 tfma_evaluation: Optional[BaseChannel] = None,
                 tfma_blessing: Optional[BaseChannel] = None, top_k=None):
        super().__init__(spec=RecommenderEvaluatorSpec(
            model=model, examples=examples, candidates=candidates, config=config, top_k=top_k,
            index_blessing=index_blessing, baseline=baseline, tfma_evaluation=tfma_evaluation,
            tfma_blessing=tfma_blessing,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
