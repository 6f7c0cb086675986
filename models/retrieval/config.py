"""The retrieval section: the two-tower model's hyperparameters (read by models/retrieval/trainer.py)."""

from __future__ import annotations

import dataclasses

from models.config import check


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
      new_user_dropout: share of training examples that lose both the user id and the
        history, as a new user's request has neither: demographics (and time) alone must
        then place them.
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
      warm_start: start from the served model's weights when one is served and its shapes
        fit these settings (models/retrieval/warm.py): the holdout model from the served
        version's holdout twin (which never learned this run's eval split), the deployed model
        from the served deployed one; the rankers then start from the served ones
        (models/ranking/warm.py). Off (``--cold``): all start from scratch.
      warm_start_patience: early stopping's patience when warm: the served weights count as
        epoch 0, and a model that starts near its optimum needs fewer epochs to show it.
      seed: initialisation and shuffling seed.
    """

    embedding_dim: int = 64
    feature_dim: int = 32
    use_user_id: bool = True
    use_history: bool = True
    use_time: bool = False
    user_id_dropout: float = 0.1
    new_user_dropout: float = 0.0
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
    warm_start: bool = True
    warm_start_patience: int = 1
    seed: int = 42

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            # 0 trains nothing: the untrained model the push gates must refuse.
            (self.epochs >= 0, "retrieval.epochs must be >= 0"),
            (self.batch_size > 1, "retrieval.batch_size must be > 1 (in-batch negatives)"),
            (self.warm_start_patience >= 1, "retrieval.warm_start_patience must be >= 1"),
        ])
