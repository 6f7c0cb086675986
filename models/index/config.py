"""The index section: how the candidate index is built, checked and served (models/index/)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from models.config import check

# Retrieved candidates per served item when the list is long (IndexConfig.for_list).
CANDIDATES_PER_ITEM = 2


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """How the candidate index is built, checked and served.

    Attributes:
      flavour: 'exact' (dot product with every item and top-k, plain TF ops:
        stock TF Serving loads it), 'scann' (ScaNN's ops: needs a TF Serving
        built with them, kubeflow/serving/Dockerfile) or 'auto' (exact below
        ``brute_force_below`` items, ScaNN from there on).
      brute_force_below: catalogue size under which 'auto' picks exact search
        (ScaNN's guidance: brute force is as fast below about 20k points).
      num_leaves: ScaNN partitioning tree leaves; None: about sqrt(n).
      num_leaves_to_search: leaves searched per query; None: tuned after the
        build on sampled users' queries (from 5% of the leaves, halving or
        doubling) to the fewest that reach ``min_recall`` with a margin. More
        leaves, higher recall, slower queries.
      training_sample_size: points sampled to train the tree and the quantiser.
      dimensions_per_block: asymmetric hashing block size (2: ScaNN's
        recommendation; larger compresses more and loses recall).
      anisotropic_quantization_threshold: the anisotropic (score-aware)
        quantisation loss threshold of asymmetric hashing; 0.2 is ScaNN's
        recommendation for normalised embeddings.
      reordering_candidates: approximate results re-scored exactly per query;
        None: max(100, 4 k), and the tuning also tries 2 to 16 times that
        (needed when quantised scores are too coarse, e.g. nearly uniform
        embeddings); 0 turns re-ordering off.
      candidates: how many candidates retrieval hands to the ranker.
      batch_size: catalogue items embedded per batch.
      embed_in_process_bytes: catalogue files holding less than this are embedded in the
        builder's own process, by the retrieval model it loads anyway to build the servable;
        from this size on, on Beam (the pipeline's runner: worker processes, or Dataflow), each
        worker loading the model. Beam's start there (a pipeline and a model load, about 1.8 s
        per model on this machine) only pays off when the catalogue's embedding is long:
        32 MiB is about a million items in the catalogue examples' gzipped layout.
      eval_queries: query embeddings (of sampled training users) on which the
        index is compared with exact search after it is built.
      min_recall: the index is blessed, and the model may be pushed, only when
        its Recall@``candidates`` against exact search on the evaluation
        queries reaches this.
    """

    flavour: str = "auto"
    brute_force_below: int = 20_000
    num_leaves: Optional[int] = None
    num_leaves_to_search: Optional[int] = None
    training_sample_size: int = 100_000
    dimensions_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    reordering_candidates: Optional[int] = None
    candidates: int = 100
    batch_size: int = 4096
    embed_in_process_bytes: int = 32 << 20
    eval_queries: int = 1000
    min_recall: float = 0.95

    def for_list(self, top_k: int) -> "IndexConfig":
        """This section for served lists of ``top_k`` items: at least CANDIDATES_PER_ITEM x
        top_k candidates, so that the ranker chooses which items make the list."""
        return dataclasses.replace(self, candidates=max(self.candidates, CANDIDATES_PER_ITEM * top_k))

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (self.flavour in ("auto", "exact", "scann"),
             "index.flavour must be 'auto', 'exact' or 'scann'"),
            (self.brute_force_below >= 0 and self.batch_size > 0 and self.eval_queries > 0,
             "index.brute_force_below, batch_size and eval_queries must be positive"),
            (self.embed_in_process_bytes >= 0, "index.embed_in_process_bytes must be >= 0"),
            (0.0 <= self.min_recall <= 1.0, "index.min_recall must be in [0, 1]"),
            (self.num_leaves is None or self.num_leaves >= 1, "index.num_leaves must be >= 1"),
            (self.num_leaves_to_search is None
             or 1 <= self.num_leaves_to_search <= (self.num_leaves or 10**9),
             "index.num_leaves_to_search must be in [1, num_leaves]"),
            (self.dimensions_per_block >= 1, "index.dimensions_per_block must be >= 1"),
            (self.reordering_candidates is None or self.reordering_candidates >= 0,
             "index.reordering_candidates must be >= 0"),
        ])
