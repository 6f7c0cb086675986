"""The pipeline definition: which components run and how they connect. Nothing else.

ExampleGen (interactions, split by time) + ExampleGen (catalogue)
  -> StatisticsGen -> ImportSchemaGen (schemas/)
  ServedModel (the served version's holdout twin, its data's statistics and warm-start states,
     or nothing)
  -> ExampleValidator (stops on anomalies, on drift from the served version's data, and on
     serving skew against a log of served requests)
  -> Transform -> Trainer (two-tower retrieval, warm-started from the served version)
  -> IndexBuilder (retrieval servable; blesses its index when its recall against exact
     search reaches IndexConfig.min_recall)
  -> Trainer (ranking: the ranker and whether it beats retrieval's order)
  -> RecommenderAssembler (retrieve -> rank -> re-rank rules in one SavedModel, and its holdout
     twin built from the train split only)
  -> CandidateExamples (one example per eval user and retrieved candidate)
  -> Evaluator (stock, TFMA: NDCG@K, AUC, MinLabelPosition by slice; value thresholds and a
     change threshold against the served model)
  -> RecommenderEvaluator (whole lists against popularity and the served model; blesses the
     model when every gate passed: its own, the stock Evaluator's, the index's) -> Pusher
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from tfx import v1 as tfx

from components.assembler.component import RecommenderAssembler
from components.candidates.component import CandidateExamples
from components.evaluator.component import RecommenderEvaluator
from components.example_gen.component import CatalogueExampleGen, InteractionsExampleGen
from components.index.component import IndexBuilder
from components.pusher.component import VersionedPusher
from components.served.component import ServedModel
from components.validation.component import StrictExampleValidator
from models import features
from models.config import encode, fields
from models.evaluation import tfma_gate
from pipeline.config import PipelineConfig

# Component ids, used by runners to attach platform settings (GPUs) and by the summary.
INTERACTIONS_GEN = "InteractionsExampleGen"
CATALOGUE_GEN = "CatalogueExampleGen"
RETRIEVAL_TRAINER = "RetrievalTrainer"
RANKING_TRAINER = "RankingTrainer"
TRAINERS = (RETRIEVAL_TRAINER, RANKING_TRAINER)
PUSHER = "Pusher"
SERVED_MODEL = "ServedModel"
# Nodes that read state outside the pipeline (the serving directory): never taken from the cache.
NEVER_CACHED = (SERVED_MODEL,)


# What an orchestrator may set per run (``create_pipeline(parameters=...)``): the data folder,
# the list length, and the retrieval, ranking and evaluation sections as their JSON encoding
# (fields left out take their defaults; the executors validate what they are given).
RUN_PARAMETERS = ("data_root", "serving_dir", "top_k", "retrieval", "ranking", "evaluation")


def create_pipeline(
    config: PipelineConfig,
    data_root: str,
    schema_dir: str,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[Sequence[str]] = None,
    parameters: Optional[Mapping[str, object]] = None,
) -> tfx.dsl.Pipeline:
    """Builds the TFX pipeline.

    Args:
      config: the typed configuration.
      data_root: folder of the input data (any supported layout).
      schema_dir: folder with interactions/schema.pbtxt and items/schema.pbtxt.
      metadata_connection_config: ML Metadata connection (local runs).
      beam_pipeline_args: arguments of every Beam pipeline.
      parameters: values of ``RUN_PARAMETERS`` to use in place of the configuration's, e.g. the
        Kubeflow runner's RuntimeParameters, so that one compiled spec serves many runs.

    Returns:
      The pipeline, for any TFX orchestrator.
    """
    config.validate()
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(RUN_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown run parameters {unknown}; known: {list(RUN_PARAMETERS)}")
    data_root = parameters.get("data_root", data_root)
    serving_dir = parameters.get("serving_dir", config.serving_dir)
    interactions = InteractionsExampleGen(data_root, config.data).with_id(INTERACTIONS_GEN)
    catalogue = CatalogueExampleGen(data_root, config.data).with_id(CATALOGUE_GEN)
    statistics = tfx.components.StatisticsGen(examples=interactions.outputs["examples"])
    schema = tfx.components.ImportSchemaGen(
        schema_file=os.path.join(schema_dir, "interactions", "schema.pbtxt"))
    # The baseline of both evaluators, the data the drift check compares with and the trainers'
    # warm start, without a Resolver node (open-source KFP v2 has none): the version being
    # served, read from the serving directory.
    served = ServedModel(examples=interactions.outputs["examples"],
                         serving_dir=serving_dir).with_id(SERVED_MODEL)
    baseline = served.outputs["model"].as_optional()
    validator = StrictExampleValidator(statistics=statistics.outputs["statistics"],
                                       schema=schema.outputs["schema"],
                                       baseline_statistics=served.outputs["statistics"].as_optional(),
                                       drift_gate=config.data.drift_gate,
                                       request_log=config.data.request_log)
    transform = tfx.components.Transform(
        examples=interactions.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn="models.transform.preprocessing.preprocessing_fn",
        # Vocabularies cover every split, so the refitted models can learn ids first seen in
        # the eval split; the holdout models read ids without training interactions as
        # out-of-vocabulary (models/retrieval/model.py), as a vocabulary of the train split would.
        splits_config=tfx.proto.SplitsConfig(analyze=[features.TRAIN, features.EVAL],
                                             transform=[features.TRAIN, features.EVAL]),
        # StatisticsGen has the raw data's statistics and the validator its anomalies; the
        # pre/post-transform statistics, schemas and anomalies Transform would add were read by
        # nothing and cost TFDV passes over every split (history columns included).
        disable_statistics=True,
        # The analyzer cache lets a later run analyse only new spans, but only when its
        # `analyzer_cache` input is given the cache of a run before, which nothing here does: it
        # was written and never read, and computing it per split cost the Transform executor
        # 17.1 -> 13.0 s on 100 interactions and 33.0 -> 23.5 s on the default data (the same
        # vocabularies and transformed values either way).
        disable_analyzer_cache=True,
    )
    # Nothing is trained on data that failed validation.
    transform.add_upstream_node(validator)
    retrieval = tfx.components.Trainer(
        run_fn="models.retrieval.trainer.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        # Where the served model's weights are (models/retrieval/warm.py), when one is served.
        base_model=served.outputs["warm_start"].as_optional(),
        train_args=tfx.proto.TrainArgs(splits=[features.TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[features.EVAL]),
        custom_config=parameters.get("retrieval", fields(config.retrieval)),
    ).with_id(RETRIEVAL_TRAINER)
    index = IndexBuilder(
        model=retrieval.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        candidates=catalogue.outputs["examples"],
        examples=interactions.outputs["examples"],
        config=encode(config.index),
        top_k=parameters.get("top_k", config.top_k),
    )
    ranking = tfx.components.Trainer(
        run_fn="models.ranking.trainer.run_fn",
        examples=interactions.outputs["examples"],
        base_model=index.outputs["index"],
        train_args=tfx.proto.TrainArgs(splits=[features.TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[features.EVAL]),
        custom_config=parameters.get("ranking", fields(config.ranking)),
    ).with_id(RANKING_TRAINER)
    # The business rules and the list length are applied here, not in a trainer: changing them
    # reruns assembly, evaluation and push, and both trainers come from the cache.
    assembler = RecommenderAssembler(
        index=index.outputs["index"],
        ranker=ranking.outputs["model"],
        examples=interactions.outputs["examples"],
        config=encode(config.rerank),
        top_k=parameters.get("top_k", config.top_k),
        statistics=statistics.outputs["statistics"],
    )
    request_examples = CandidateExamples(
        model=assembler.outputs["holdout_model"],
        examples=interactions.outputs["examples"],
        config=parameters.get("evaluation", encode(config.evaluation)),
    )
    tfma_evaluator = tfx.components.Evaluator(
        examples=request_examples.outputs["request_examples"],
        model=assembler.outputs["holdout_model"],
        baseline_model=baseline,
        eval_config=tfma_gate.eval_config(config.evaluation),
        example_splits=[features.EVAL],
    )
    evaluator = RecommenderEvaluator(
        model=assembler.outputs["holdout_model"],
        examples=interactions.outputs["examples"],
        candidates=catalogue.outputs["examples"],
        config=parameters.get("evaluation", encode(config.evaluation)),
        top_k=parameters.get("top_k", config.top_k),
        index_blessing=index.outputs["blessing"],
        baseline=baseline,
        tfma_evaluation=tfma_evaluator.outputs["evaluation"],
        tfma_blessing=tfma_evaluator.outputs["blessing"],
    )
    # The stock Pusher with a push that never leaves a half-written version (recommender/versions.py).
    # Its blessing is the recommender evaluator's, which requires every other gate's.
    pusher = VersionedPusher(
        model=assembler.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.push_dir)),
        custom_config=fields(config.push),
        serving_dir=serving_dir,
    ).with_id(PUSHER)
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=config.pipeline_root,
        components=[interactions, catalogue, statistics, schema, served, validator, transform,
                    retrieval, index, ranking, assembler, request_examples, tfma_evaluator,
                    evaluator, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args or config.beam_pipeline_args),
    )


def compile_ir(pipe: tfx.dsl.Pipeline):
    """The pipeline's IR for IR-based runners, with caching off for ``NEVER_CACHED`` nodes."""
    from tfx.dsl.compiler import compiler

    ir = compiler.Compiler().compile(pipe)
    for node in ir.nodes:
        if node.pipeline_node.node_info.id in NEVER_CACHED:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    return ir
