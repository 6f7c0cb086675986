"""Spec of the candidate examples: the stock Evaluator's (request, candidate) examples."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.candidates import executor


class CandidateExamplesSpec(ComponentSpec):
    PARAMETERS = {
        # The evaluation section (models.config.encode(EvalConfig)): requests, candidates_per_request.
        "config": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        "request_examples": ChannelParameter(type=standard_artifacts.Examples),
    }


class CandidateExamples(base_component.BaseComponent):
    """One example per (eval user, retrieved candidate), for the stock Evaluator (TFMA).

    ``model`` is the holdout recommender (it has not seen the eval split): its
    index retrieves each eval user's candidates; each example has the request
    (the user), the item, ``gain`` (1 for a held-out interaction) and the
    slicing features (models/evaluation/candidates.py). Output:
    ``request_examples``, Examples with one split, 'eval'.
    """

    SPEC_CLASS = CandidateExamplesSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: BaseChannel, examples: BaseChannel, config: str):
        super().__init__(spec=CandidateExamplesSpec(
            model=model, examples=examples, config=config,
            request_examples=types.Channel(type=standard_artifacts.Examples)))
