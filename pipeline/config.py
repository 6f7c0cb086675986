"""Typed configuration: the one place where every knob of the pipeline lives.

Defaults run the embedded synthetic example. The runners (local CLI, Kubeflow)
override fields from flags; components receive their section as a plain dict
(``dataclasses.asdict``) through ``custom_config`` or execution parameters, so
every value is recorded in ML Metadata with the run, and parse it back with
``from_dict``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple, Type, TypeVar

T = TypeVar("T")
# Retrieved candidates per served item when the list is long (PipelineConfig.with_lists).
CANDIDATES_PER_ITEM = 2


def from_dict(cls: Type[T], values: Optional[Dict[str, Any]]) -> T:
    """Builds dataclass ``cls`` from a dict, rejecting unknown keys.

    Lists (JSON has no tuples) are turned back into tuples for tuple fields.

    Raises:
      ValueError: a key is not a field of ``cls``.
    """
    values = dict(values or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(names)}")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
      data_dir: a folder in one of the supported layouts (canonical, MovieLens
        100K, MovieLens 1M); None means the embedded synthetic dataset.
      eval_fraction: share of each user's interactions, the latest in time,
        held out for evaluation (``split_strategy='per_user'``), or share of all
        interactions after a global time cut (``'global'``).
      split_strategy: 'per_user' or 'global'.
      max_bad_row_fraction: rows that fail validation are skipped and reported
        while their share of a file stays at or below this; above it the run
        stops. 0 means any bad row stops the run.
      synthetic_users, synthetic_items, synthetic_interactions, synthetic_seed:
        shape of the embedded dataset when ``data_dir`` is None.
    """

    data_dir: Optional[str] = None
    eval_fraction: float = 0.2
    split_strategy: str = "per_user"
    max_bad_row_fraction: float = 0.0
    synthetic_users: int = 943
    synthetic_items: int = 1682
    synthetic_interactions: int = 100_000
    synthetic_seed: int = 7


@dataclasses.dataclass(frozen=True)
class RetrievalConfig:
    """Hyperparameters of the two-tower retrieval model.

    Attributes:
      embedding_dim: size of the shared query/candidate embedding.
      feature_dim: size of each id embedding inside the towers (the item-id
        table is shared by the candidate tower and the query tower's history).
      use_user_id, use_history, use_time: query tower inputs besides the
        demographics: the user-id embedding (collaborative, known users only),
        the bag of the user's earlier items, and the request time (scaled over
        the training period; a known user's request is placed at their last
        training interaction, anyone else's at the end of the training data).
        Off by default: on the benchmark it moved warm users' Recall@100 by
        less than the run-to-run noise and halved new users' Recall@10, whose
        requests sit at the end of the log.
      user_id_dropout: share of training examples whose user id is replaced by
        the out-of-vocabulary id, so the tower learns to place users it has
        never seen (cold start) from their other features.
      item_id_dropout: the same for candidates: new items (no interactions,
        out-of-vocabulary id) are placed by their features.
      epochs: most passes over the training data; early stopping usually ends
        training sooner.
      batch_size, learning_rate: optimisation (Adam). The batch is also the
        pool of in-batch negatives. Chosen on the synthetic benchmark (same
        split, one run each): batch 256 / lr 0.001 gave Recall@100 0.443 and
        NDCG@10 0.210 against 0.425 / 0.172 for batch 1024 / lr 0.005.
      temperature: logits are divided by this before the softmax.
      logq_correction: subtract log(sampling probability) of each candidate
        from its logit (Yi et al., RecSys 2019), so popular items are not
        over-penalised for appearing often as negatives.
      uniform_negatives: extra negatives per batch drawn uniformly from the
        items (mixed negative sampling), so rarely interacted items are seen as
        negatives too; 0 uses in-batch negatives only.
      remove_accidental_hits: do not treat another row's copy of the positive
        item as a negative.
      l2_normalize: cosine instead of raw dot product.
      item_bias: a learned per-item bias (from the item id, and from the
        item's features for items without interactions) added to the score,
        carried as one extra embedding dimension (the query's is 1), so the
        score stays a dot product that the index can search. Lets a
        normalised model express item popularity.
      early_stopping_k, early_stopping_patience, early_stopping_users: after
        every epoch, Recall@k of the eval split (all items ranked, training
        items excluded) on up to that many users; training stops when it has
        not improved for ``patience`` epochs and the best epoch's weights are kept.
      refit: refit for deployment. After early stopping on the eval split has
        chosen the number of epochs, the retrieval model to deploy learns from
        train + eval for that many epochs, and the ranker to deploy learns again,
        with its own settings, from lists over every interaction served by it.
        The holdout models (train split only) stay for the held-out checks and
        the push gate. The eval split holds each user's latest interactions,
        the best predictors of what comes next.
      seed: initialisation and shuffling seed.
    """

    embedding_dim: int = 64
    feature_dim: int = 32
    use_user_id: bool = True
    use_history: bool = True
    use_time: bool = False
    user_id_dropout: float = 0.1
    item_id_dropout: float = 0.05
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 0.001
    temperature: float = 0.1
    logq_correction: bool = True
    uniform_negatives: int = 0
    remove_accidental_hits: bool = True
    l2_normalize: bool = True
    item_bias: bool = False
    early_stopping_k: int = 100
    early_stopping_patience: int = 3
    early_stopping_users: int = 2000
    refit: bool = True
    seed: int = 42


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
      batch_size: catalogue items embedded per batch (Beam).
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
    eval_queries: int = 1000
    min_recall: float = 0.95


@dataclasses.dataclass(frozen=True)
class RankingConfig:
    """The ranking model that re-scores retrieved candidates, and its training lists.

    Attributes:
      loss: 'pointwise' (sigmoid cross-entropy per pair) or 'listwise'
        (softmax cross-entropy per list). Pointwise is the default: on the
        embedded data it lifted held-out NDCG@10 over retrieval order more
        in every paired comparison (README, "The ranking model").
      cross_layers: DCN-v2 cross layers; projection_dim: their low-rank size
        (0: full-rank).
      hidden_units: sizes of the ReLU tower on top of the cross layers.
      epochs, batch_size (lists per step), learning_rate: optimisation (Adam).
      list_length: retrieved candidates per training list (at most the
        index's candidates).
      anchor_fractions: where each user's training timeline is cut into a
        (history, next window) training list.
      label_window: share of the user's interactions after an anchor that
        are the list's positives (the eval split's share, by default).
      min_interactions: users with fewer training interactions give no list.
      neighbours: item-to-item neighbours per item behind the ranker's
        co-interaction features (ranking/neighbours.py); 0 turns them off
        (the features are then 0). Off by default: on the embedded data they
        lowered the ranker's held-out NDCG@10 (README, "The ranking model").
      seed: sampling and initialisation seed.
    """

    loss: str = "pointwise"
    cross_layers: int = 2
    projection_dim: int = 32
    hidden_units: Tuple[int, ...] = (128, 64)
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 0.001
    list_length: int = 100
    anchor_fractions: Tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8)
    label_window: float = 0.2
    min_interactions: int = 5
    neighbours: int = 0
    seed: int = 43


@dataclasses.dataclass(frozen=True)
class RerankConfig:
    """Business rules the servable applies to the ranked list (recommender/rerank.py).

    Items the user interacted with in training, the request's history and its
    exclusion list are never returned (retrieval leaves them out).

    Attributes:
      dislike_rating: ratings at or below this mark an item as disliked
        (MovieLens: 1-5 stars).
      dislike_similarity: candidates whose item-embedding cosine similarity to
        one of the user's disliked items reaches this are demoted behind all
        other candidates (1.0: off; the disliked items themselves are consumed
        and never returned).
      diversity: MMR trade-off in [0, 1): each next item maximises
        (1 - diversity) * relevance - diversity * max similarity to the items
        already chosen; 0 keeps the ranker's order.
      freshness_boost: added to the relevance (ranker scores min-max scaled to
        [0, 1] per list) times exp(-days since the item's first interaction / 30).
      max_k: the largest list a request may ask for (at most the index's
        candidates).
    """

    dislike_rating: float = 2.0
    dislike_similarity: float = 0.9
    diversity: float = 0.0
    freshness_boost: float = 0.0
    max_k: int = 100


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the push gate.

    Attributes:
      cutoffs: the K of Recall@K and NDCG@K reported.
      gate_metric: the metric the blessing compares, e.g. 'recall@10'.
      min_lift_over_popularity: the model is blessed when its gate metric is at
        least this multiple of the popularity baseline's on the same split.
      batch_size: users scored per call of the servable.
    """

    cutoffs: Tuple[int, ...] = (10, 50, 100)
    gate_metric: str = "recall@10"
    min_lift_over_popularity: float = 1.0
    batch_size: int = 256


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline.

    Attributes:
      name: pipeline name in ML Metadata and Kubeflow.
      pipeline_root: where TFX writes artifacts.
      metadata_path: SQLite ML Metadata file (local runs); None on Kubeflow.
      serving_dir: the Pusher writes ``<serving_dir>/recommender/<version>/``.
      top_k: length of the list the servable returns.
      beam_args: arguments of every Beam pipeline the components start.
      enable_cache: reuse outputs of unchanged components.
    """

    name: str = "tfx-recommender"
    pipeline_root: str = "tfx_output/pipeline_root"
    metadata_path: Optional[str] = "tfx_output/metadata.sqlite"
    serving_dir: str = "serving"
    top_k: int = 10
    beam_args: Tuple[str, ...] = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
    enable_cache: bool = False
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    retrieval: RetrievalConfig = dataclasses.field(default_factory=RetrievalConfig)
    index: IndexConfig = dataclasses.field(default_factory=IndexConfig)
    ranking: RankingConfig = dataclasses.field(default_factory=RankingConfig)
    rerank: RerankConfig = dataclasses.field(default_factory=RerankConfig)
    evaluation: EvalConfig = dataclasses.field(default_factory=EvalConfig)

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
        candidates = candidates or max(self.index.candidates, CANDIDATES_PER_ITEM * top_k)
        evaluation = dataclasses.replace(self.evaluation,
                                         cutoffs=tuple(sorted({10, 50, 100, top_k})))
        if top_k < 10:
            evaluation = dataclasses.replace(evaluation, gate_metric=f"recall@{top_k}")
        return dataclasses.replace(
            self, top_k=top_k, evaluation=evaluation,
            index=dataclasses.replace(self.index, candidates=candidates),
            ranking=dataclasses.replace(self.ranking, list_length=candidates),
            rerank=dataclasses.replace(self.rerank, max_k=max(self.rerank.max_k, top_k)))

    @property
    def push_dir(self) -> str:
        """Base directory of the pushed model's versions."""
        return f"{self.serving_dir.rstrip('/')}/recommender"

    def validate(self) -> None:
        """Raises ValueError naming the field when a value is out of range."""
        checks = [
            (self.top_k > 0, "top_k must be positive"),
            (0.0 < self.data.eval_fraction < 1.0, "data.eval_fraction must be in (0, 1)"),
            (self.data.split_strategy in ("per_user", "global"),
             "data.split_strategy must be 'per_user' or 'global'"),
            (0.0 <= self.data.max_bad_row_fraction < 1.0,
             "data.max_bad_row_fraction must be in [0, 1)"),
            (self.index.flavour in ("auto", "exact", "scann"),
             "index.flavour must be 'auto', 'exact' or 'scann'"),
            (self.index.brute_force_below >= 0 and self.index.batch_size > 0
             and self.index.eval_queries > 0, "index.brute_force_below, batch_size and "
             "eval_queries must be positive"),
            (0.0 <= self.index.min_recall <= 1.0, "index.min_recall must be in [0, 1]"),
            (self.index.num_leaves is None or self.index.num_leaves >= 1,
             "index.num_leaves must be >= 1"),
            (self.index.num_leaves_to_search is None
             or 1 <= self.index.num_leaves_to_search <= (self.index.num_leaves or 10**9),
             "index.num_leaves_to_search must be in [1, num_leaves]"),
            (self.index.dimensions_per_block >= 1, "index.dimensions_per_block must be >= 1"),
            (self.index.reordering_candidates is None or self.index.reordering_candidates >= 0,
             "index.reordering_candidates must be >= 0"),
            (self.index.candidates >= self.top_k,
             f"index.candidates ({self.index.candidates}) must be >= top_k ({self.top_k})"),
            (self.retrieval.epochs > 0 and self.ranking.epochs > 0, "epochs must be positive"),
            (self.ranking.loss in ("listwise", "pointwise"),
             "ranking.loss must be 'listwise' or 'pointwise'"),
            (self.ranking.list_length >= self.top_k,
             f"ranking.list_length ({self.ranking.list_length}) must be >= top_k ({self.top_k})"),
            (all(0.0 < f < 1.0 for f in self.ranking.anchor_fractions)
             and 0.0 < self.ranking.label_window < 1.0,
             "ranking.anchor_fractions and label_window must be in (0, 1)"),
            (self.rerank.max_k >= self.top_k, "rerank.max_k must be >= top_k"),
            (0.0 <= self.rerank.diversity < 1.0, "rerank.diversity must be in [0, 1)"),
            (self.rerank.freshness_boost >= 0.0, "rerank.freshness_boost must be >= 0"),
            (-1.0 <= self.rerank.dislike_similarity <= 1.0,
             "rerank.dislike_similarity must be in [-1, 1]"),
            (self.retrieval.batch_size > 1, "retrieval.batch_size must be > 1 (in-batch negatives)"),
            (self.ranking.neighbours >= 0, "ranking.neighbours must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Invalid configuration: {message}")
