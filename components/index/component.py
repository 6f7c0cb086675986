"""Spec of the index builder component: retrieval model + catalogue -> servable index + blessing."""

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import ComponentSpec, standard_artifacts
from tfx.types.channel import BaseChannel
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.index import executor


class IndexBuilderSpec(ComponentSpec):
    PARAMETERS = {
        # dataclasses.asdict(IndexConfig) as JSON: recorded in ML Metadata.
        "config": ExecutionParameter(type=str),
        # The served list's length (a Kubeflow run parameter): the candidates follow it.
        "top_k": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "candidates": ChannelParameter(type=standard_artifacts.Examples),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        "index": ChannelParameter(type=standard_artifacts.Model),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class IndexBuilder(base_beam_component.BaseBeamComponent):
    """Embeds the catalogue with the retrieval model, builds the index and checks it.

    Inputs: ``model`` (the two-tower model: query and candidate towers),
    ``transform_graph`` (its vocabularies: which catalogue items had no
    interactions), ``candidates`` (catalogue examples, split 'items'),
    ``examples`` (interactions: every split gives the deployed servable's known
    users, their histories and exclusions and item popularity; the 'train'
    split alone gives its holdout twin's, ``models/holdout.py``).

    Outputs: ``index``, a Model artifact in the Pusher's layout
    (``<uri>/Format-Serving``; the catalogue's embeddings under
    ``<uri>/embeddings``) whose custom properties and ``index_stats.json`` hold
    the build and evaluation figures (Recall@k against exact search on sampled
    queries, latency percentiles, throughput, build time, size); ``blessing``,
    a ModelBlessing that is blessed only when the index's recall reaches
    ``IndexConfig.min_recall``.
    """

    SPEC_CLASS = IndexBuilderSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, model: BaseChannel, transform_graph: BaseChannel, candidates: BaseChannel,
                 examples: BaseChannel, config: str, top_k=None):
        super().__init__(spec=IndexBuilderSpec(
            model=model, transform_graph=transform_graph, candidates=candidates,
            examples=examples, config=config, top_k=top_k,
            index=types.Channel(type=standard_artifacts.Model),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
