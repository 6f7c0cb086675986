"""The pipeline's configuration: the sections composed, and what depends on more than one.

Each section lives beside the code that reads it (``models/*/config.py``,
``recommender/config.py``); ``PipelineConfig`` composes them with the
pipeline-wide settings, derives the list lengths in one place
(``with_lists``) and validates the whole once. Defaults run the embedded
synthetic example; the runners override fields from flags. Components receive
their section in one encoding and read it back with ``models.config.decode``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from models.config import ConfigError, check
from models.data.config import DataConfig
from models.evaluation.config import EvalConfig
from models.index import config as index_config
from models.index.config import IndexConfig
from models.ranking.config import RankingConfig
from models.retrieval.config import RetrievalConfig
from recommender.config import PushConfig, RerankConfig, base_of

__all__ = ["ConfigError", "DataConfig", "EvalConfig", "IndexConfig", "PipelineConfig",
           "PushConfig", "RankingConfig", "RerankConfig", "RetrievalConfig"]

# The DirectRunner's defaults: one worker process per core (0: as many as there are cores).
DIRECT_DEFAULTS = (("--direct_running_mode", "multi_processing"), ("--direct_num_workers", "0"))
# Every Beam step in the run's own process (PipelineConfig.for_input chooses it for small input).
IN_PROCESS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
# Unless a Beam step's options name its workers' dependencies (one of these), TFX's Beam executors
# copy TFX's own install and build an sdist of it for the workers to install: about 2 s and
# 49 MB of /tmp (never removed) per Beam step, seven a run. The DirectRunner stages nothing (its
# workers run in this Python environment), so a DirectRunner run names the project's setup.py,
# whose dependencies are this environment's; other runners get TFX's package as before.
DEPENDENCY_FLAGS = ("--extra_packages", "--setup_file", "--requirements_file",
                    "--worker_harness_container_image", "--sdk_container_image")
DIRECT_DEPENDENCIES = "--setup_file=./setup.py"

# Retrieved candidates per served item when the list is long (IndexConfig.for_list).
CANDIDATES_PER_ITEM = index_config.CANDIDATES_PER_ITEM


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline.

    Attributes:
      name: pipeline name in ML Metadata and Kubeflow.
      pipeline_root: where TFX writes artifacts.
      metadata_path: SQLite ML Metadata file (local runs); None on Kubeflow.
      serving_dir: the Pusher writes ``<serving_dir>/recommender/<version>/``.
      top_k: length of the list the servable returns.
      beam_runner: the Beam runner of every Beam pipeline the components start:
        'DirectRunner' (local; multi-processing on every core unless ``beam_args`` say
        otherwise), 'PortableRunner' (a job service: Flink, Spark or Beam's own, with
        ``--job_endpoint`` and an environment in ``beam_args``), 'DataflowRunner', ...
      beam_args: further Beam options (``--job_endpoint=...``, ``--direct_num_workers=4``).
      enable_cache: reuse outputs of unchanged components.
      in_process_bytes: a local run on the DirectRunner (no running mode in ``beam_args``) runs
        every Beam step in its own process while its input files hold fewer bytes than this,
        and starts a worker process per core from this size on (``for_input``). Each worker
        process imports TensorFlow and loads the models its step uses: measured on 2 cores,
        about 8 s per Beam step and 1 GB per worker, which on small data costs more than the
        second core gains (README, "What a run costs").
    """

    name: str = "tfx-recommender"
    pipeline_root: str = "tfx_output/pipeline_root"
    metadata_path: Optional[str] = "tfx_output/metadata.sqlite"
    serving_dir: str = "serving"
    top_k: int = 10
    beam_runner: str = "DirectRunner"
    beam_args: Tuple[str, ...] = ()
    enable_cache: bool = False
    in_process_bytes: int = 64 << 20
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    retrieval: RetrievalConfig = dataclasses.field(default_factory=RetrievalConfig)
    index: IndexConfig = dataclasses.field(default_factory=IndexConfig)
    ranking: RankingConfig = dataclasses.field(default_factory=RankingConfig)
    rerank: RerankConfig = dataclasses.field(default_factory=RerankConfig)
    evaluation: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)

    def with_lists(self, top_k: int, candidates: Optional[int] = None) -> "PipelineConfig":
        """This configuration serving lists of ``top_k`` items ranked from ``candidates``.

        Everything that depends on the list lengths follows: the ranker's
        training lists are as long as what it ranks when served, the longest
        list a request may ask for, the evaluation's cutoffs and gate.

        Args:
          top_k: the served list's length.
          candidates: retrieved items the ranker ranks per request; None: the
            index's default, and at least CANDIDATES_PER_ITEM x top_k, so that
            the ranker chooses which items make the list, not only their order.
        """
        # The same derivations run in the Kubeflow tasks from a run's top_k parameter.
        index = (dataclasses.replace(self.index, candidates=candidates) if candidates
                 else self.index.for_list(top_k))
        # The ranker's training lists are the index's candidates: its trainer reads them from
        # the index it ranks for, so a Kubeflow run's top_k parameter reaches them too.
        return dataclasses.replace(
            self, top_k=top_k, evaluation=self.evaluation.for_list(top_k), index=index,
            rerank=self.rerank.for_list(top_k))

    def for_input(self, input_bytes: int) -> "PipelineConfig":
        """This configuration with the DirectRunner's running mode chosen for ``input_bytes`` of
        input (``in_process_bytes``); unchanged for other runners or a mode given in ``beam_args``."""
        given = self._given()
        if (self.beam_runner != "DirectRunner" or "--runner" in given
                or given.keys() & {flag for flag, _ in DIRECT_DEFAULTS}):
            return self
        if input_bytes < self.in_process_bytes:
            return dataclasses.replace(self, beam_args=IN_PROCESS + tuple(self.beam_args))
        return self

    @property
    def beam_pipeline_args(self) -> Tuple[str, ...]:
        """Every Beam option the components get: the runner, its local defaults, ``beam_args``."""
        given = self._given()
        out = [] if "--runner" in given else [f"--runner={self.beam_runner}"]
        if self.beam_runner == "DirectRunner":
            out += [f"{flag}={value}" for flag, value in DIRECT_DEFAULTS if flag not in given]
        if (given.get("--runner", self.beam_runner) == "DirectRunner"
                and not given.keys() & set(DEPENDENCY_FLAGS)):
            out.append(DIRECT_DEPENDENCIES)
        return tuple(out) + tuple(self.beam_args)

    def _given(self) -> dict:
        """{flag: value} of ``beam_args`` (value "" for a flag without one)."""
        return dict(arg.split("=", 1) if "=" in arg else (arg, "") for arg in self.beam_args)

    @property
    def push_dir(self) -> str:
        """Base directory of the pushed model's versions."""
        return base_of(self.serving_dir)

    def validate(self) -> None:
        """Validates every section and how they fit together (once: ``create_pipeline`` calls it).

        Raises:
          ConfigError: naming the field whose value is out of range.
        """
        for section in (self.data, self.retrieval, self.index, self.ranking, self.rerank,
                        self.evaluation, self.push):
            section.validate()
        check([
            (self.top_k > 0, "top_k must be positive"),
            (self.in_process_bytes >= 0, "in_process_bytes must be >= 0"),
            (self.index.candidates >= self.top_k,
             f"index.candidates ({self.index.candidates}) must be >= top_k ({self.top_k})"),
            (self.rerank.max_k >= self.top_k, "rerank.max_k must be >= top_k"),
            (self.evaluation.candidates_per_request <= self.index.candidates,
             f"evaluation.candidates_per_request ({self.evaluation.candidates_per_request}) must "
             f"be <= index.candidates ({self.index.candidates}), the retrieved list's length"),
        ])
