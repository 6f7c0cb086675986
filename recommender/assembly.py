"""Assembling the recommender servable: index + ranker + interactions + rules -> one SavedModel.

The pure logic of the RecommenderAssembler component (plain paths and values
in, a SavedModel out). It is its own step after the ranking Trainer so that a
change of the business rules (``RerankConfig``) or of the list length
re-assembles, evaluates and pushes while both trainers come from the cache.
"""

from __future__ import annotations

import logging
from typing import Dict, Sequence

from models.index import contract
from models.ranking import export
from models.ranking.tables import read as read_tables
from recommender import rerank, servable
from recommender.config import RerankConfig


def assemble(index_dir: str, ranker_dir: str, interaction_files: Sequence[str],
             rules: RerankConfig, top_k: int, export_dir: str) -> Dict[str, object]:
    """Builds and saves the recommender of an index servable and a ranker export.

    Args:
      index_dir: the IndexBuilder's servable (models/index/contract.py).
      ranker_dir: the ranking Trainer's export for that index (models/ranking/export.py).
      interaction_files: the interactions the servable knows: its item tables
        (first-seen times, recent popularity, neighbours) and each user's dislikes.
      rules: the re-ranking rules.
      top_k: the length of serving_default's lists.
      export_dir: where the SavedModel (and its TF Serving warm-up file) goes.

    Returns:
      What was assembled: whether the ranker is used, catalogue and user counts.
    """
    index = contract.load(index_dir)
    ranker, card = export.load(ranker_dir)
    data, tables = read_tables(index, interaction_files, card.neighbours)
    disliked = rerank.disliked(data, rules.dislike_rating, index)
    model = servable.Recommender(index, ranker, rules, top_k, tables.first_seen, disliked,
                                 card.use_ranker and ranker is not None, tables.neighbours,
                                 tables.trend)
    servable.save(model, export_dir)
    summary = {"use_ranker": model.use_ranker, "top_k": model.top_k, "max_k": model.max_k,
               "items": int(index.item_embeddings.shape[0]), "users": contract.users_of(index),
               "dislikes": int(len(disliked[1]))}
    logging.info("Recommender assembled at %s: %s", export_dir, summary)
    return summary
