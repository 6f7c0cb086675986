"""Spec of the index builder component: retrieval model + catalogue -> servable index."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.index import executor


class IndexBuilderSpec(ComponentSpec):
    PARAMETERS = {
        # dataclasses.asdict(IndexConfig) as JSON: recorded in ML Metadata.
        "config": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "candidates": ChannelParameter(type=standard_artifacts.Examples),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        "index": ChannelParameter(type=standard_artifacts.Model),
    }


class IndexBuilder(base_component.BaseComponent):
    """Embeds the catalogue with the retrieval model and builds the retrieval servable.

    Inputs: ``model`` (the two-tower model), ``candidates`` (catalogue examples,
    split 'items'), ``examples`` (interactions; the 'train' split gives known
    users, their exclusions and item popularity). Output: ``index``, a Model
    artifact in the Pusher's layout (``<uri>/Format-Serving``) with the build
    figures as custom properties.
    """

    SPEC_CLASS = IndexBuilderSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: BaseChannel, candidates: BaseChannel, examples: BaseChannel,
                 config: str):
        super().__init__(spec=IndexBuilderSpec(
            model=model, candidates=candidates, examples=examples, config=config,
            index=types.Channel(type=standard_artifacts.Model)))
