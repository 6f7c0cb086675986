"""Assembling the recommender servable: index + ranker + interactions + rules -> one SavedModel.

The pure logic of the RecommenderAssembler component (plain paths and values
in, a SavedModel out). It is its own step after the ranking Trainer so that a
change of the business rules (``RerankConfig``) or of the list length
re-assembles, evaluates and pushes while both trainers come from the cache.
EASE's item-to-item weights (models/ranking/ease.py), the servable's second list, are
fitted here on the interactions the servable knows; their L2 and their share
of the fused list are chosen on the eval split with the holdout model (trained
on the train split only), and the deployed model takes the same settings. So is
the popularity list's share for requests by demographics alone (no known user,
no history), chosen by asking the eval split's users that way.
"""

from __future__ import annotations

import logging
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from models import arrays, features
from models.evaluation import metrics
from models.index import contract
from models.index.contract import Retrieved
from models.index.servable import EXCLUDE
from models.ranking import ease, export
from models.ranking.tables import interactions as read_interactions
from models.ranking.tables import read as read_tables
from recommender import rerank, servable
from recommender.config import EASE_WEIGHTS, RerankConfig

# Users per call of the servable while a weight is chosen.
_BATCH = 256


def assemble(index_dir: str, ranker_dir: str, interaction_files: Sequence[str],
             rules: RerankConfig, top_k: int, export_dir: str,
             held_out_files: Optional[Sequence[str]] = None,
             fusion: Optional[Mapping[str, object]] = None) -> Dict[str, object]:
    """Builds and saves the recommender of an index servable and a ranker export.

    Args:
      index_dir: the IndexBuilder's servable (models/index/contract.py).
      ranker_dir: the ranking Trainer's export for that index (models/ranking/export.py).
      interaction_files: the interactions the servable knows: its item tables
        (first-seen times, recent popularity, neighbours, EASE), each user's dislikes.
      rules: the re-ranking rules.
      top_k: the length of serving_default's lists.
      export_dir: where the SavedModel (and its TF Serving warm-up file) goes.
      held_out_files: interactions after ``interaction_files`` (the eval split), on
        which EASE's settings left None in ``rules`` are chosen.
      fusion: the second lists' settings chosen before (the holdout model's summary:
        its "ease" and "popularity_prior"), used as they are.

    Returns:
      What was assembled: whether the ranker is used, catalogue and user counts, EASE's
      settings ("ease": fitted, l2, weight and what was tried) and popularity's for
      requests by demographics alone ("popularity_prior": weight and what was tried).
    """
    index = contract.load(index_dir)
    ranker, card = export.load(ranker_dir)
    data, tables = read_tables(index, interaction_files, card.neighbours)
    disliked = rerank.disliked(data, rules.dislike_rating, index)
    held = read_interactions(index, held_out_files) if held_out_files else None
    settings, weights = _ease(index, data, rules, held, None if fusion is None else fusion["ease"])
    chosen = dict((fusion or {}).get("popularity_prior") or {})
    if not chosen and rules.popularity_weight is not None:
        chosen = {"weight": float(rules.popularity_weight)}
    model = servable.Recommender(index, ranker, rules, top_k, tables.first_seen, disliked,
                                 card.use_ranker and ranker is not None, tables.neighbours,
                                 tables.trend, weights, settings.get("weight", 0.0),
                                 chosen.get("weight", 0.0))
    if (settings["fitted"] and "weight" not in settings) or (not chosen and held is not None):
        _choose_weights(model, index, held, settings, chosen)
    model.set_weights(settings.get("weight", 0.0), chosen.get("weight", 0.0))
    servable.save(model, export_dir)
    summary = {"use_ranker": model.use_ranker, "top_k": model.top_k, "max_k": model.max_k,
               "items": int(index.item_embeddings.shape[0]), "users": contract.users_of(index),
               "dislikes": int(len(disliked[1])), "ease": settings, "popularity_prior": chosen}
    logging.info("Recommender assembled at %s: %s", export_dir, summary)
    return summary


def _ease(index, data, rules: RerankConfig, held, fusion):
    """(EASE's settings, its ``ease.ItemWeights`` or None): fitted on ``data`` with the L2 of
    ``fusion``, of ``rules`` or chosen on ``held`` (the eval split's interactions, or None);
    "weight" is set unless it is still to be chosen."""
    n_items = int(index.item_embeddings.shape[0])
    users = data.columns[features.USER_ID]
    n_users = len(np.unique(users))
    if fusion is not None:
        settings = dict(fusion)
    elif rules.ease_weight == 0.0:
        settings = {"fitted": False, "reason": "rerank.ease_weight is 0"}
    elif not metrics.ease_fits(n_users, n_items):
        settings = {"fitted": False, "reason": f"{n_users} users x {n_items} items is beyond "
                                               f"EASE's limits (metrics.ease_fits)"}
    elif held is None and (rules.ease_l2 is None or rules.ease_weight is None):
        settings = {"fitted": False, "reason": "no eval split to choose EASE's settings on"}
    else:
        settings = {"fitted": True}
        if rules.ease_weight is not None:
            settings["weight"] = float(rules.ease_weight)
    if not settings["fitted"]:
        return settings, None
    x, row_users = ease.matrix(users, data.positions, n_items)
    if "l2" not in settings:
        if rules.ease_l2 is None:
            row = {user: r for r, user in enumerate(row_users)}
            later: Dict[int, set] = {}
            for user, position in zip(held.columns[features.USER_ID], held.positions):
                if user in row and position >= 0 and not x[row[user], position]:
                    later.setdefault(row[user], set()).add(int(position))
            settings["l2"], settings["l2_tried"] = ease.choose_l2(x, later)
        else:
            settings["l2"] = float(rules.ease_l2)
    return settings, ease.fit(x, settings["l2"])


def _choose_weights(model, index, held, settings: Dict[str, object],
                    chosen: Dict[str, object]) -> None:
    """Sets, in ``settings`` (EASE's) and ``chosen`` (popularity's for requests by
    demographics alone), each weight still unset to the one of EASE_WEIGHTS whose lists
    score the highest NDCG@10 on ``held`` (the eval split's interactions), and what each
    weight scored."""
    held_items = metrics.group_by_user(held.columns[features.USER_ID],
                                       held.columns[features.ITEM_ID])
    n_items = int(index.item_embeddings.shape[0])
    lists = _lists_by_weight(model, index)
    if settings["fitted"] and "weight" not in settings:
        tried = _ndcg_by_weight(lists, held_items, n_items,
                                [(w, chosen.get("weight", 0.0)) for w in EASE_WEIGHTS], False)
        settings["weight"], settings["weight_tried"] = max(tried, key=tried.get), tried
    if not chosen:
        tried = _ndcg_by_weight(lists, held_items, n_items,
                                [(settings.get("weight", 0.0), w) for w in EASE_WEIGHTS], True)
        chosen.update(weight=max(tried, key=tried.get), weight_tried=tried)


def _lists_by_weight(model, index):
    """``lists(users, weights [w, 2], by_demographics)``: ``model``'s item ids [w, b, top_k] at
    each (EASE's weight, popularity's) of ``weights`` for the eval ``users``, asked by id, or
    (``by_demographics``) each as a new user by their stored demographics alone (no id, no
    history). One function for both ways of asking, so that the recommender's lists are
    traced once per assembly, not once per way (the choice on the suite's shared run: 6.7 s
    with a function per way, 5.8 s with this one, the same figures)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                  tf.TensorSpec([None, 2], tf.float32),
                                  tf.TensorSpec([], tf.bool)], autograph=False)
    def lists(users, weights, by_demographics):
        n = tf.shape(users)[0]

        def by_stored_demographics():
            at = index.lookup_users(users)
            return index.retrieve_positions_with_context({
                features.USER_ID: tf.fill([n], ""), features.AGE: tf.gather(index.user_ages, at),
                features.GENDER: tf.gather(index.user_genders, at),
                features.OCCUPATION: tf.gather(index.user_occupations, at),
                features.HISTORY: tf.fill([n, 1], ""), EXCLUDE: tf.fill([n, 1], "")})

        found = Retrieved.of(tf.cond(by_demographics, by_stored_demographics,
                                     lambda: index.retrieve_positions(users)))
        asked = tf.where(by_demographics, tf.fill([n], ""), users)
        return model.lists_by_weight(found, index.lookup_users(asked), weights)

    return lists


def _ndcg_by_weight(lists, held: Mapping[str, set], n_items: int,
                    pairs: Sequence[Sequence[float]], by_demographics: bool) -> Dict[float, float]:
    """{weight: NDCG@10 on ``held``} of the lists (``_lists_by_weight``) at each (EASE's
    weight, popularity's) of ``pairs``, keyed by the weight that varies; ``by_demographics``:
    each user asked as a new one, by their stored demographics alone."""
    users = sorted(held)
    by_pair: list = [{} for _ in pairs]
    for start in range(0, len(users), _BATCH):
        chunk = users[start:start + _BATCH]
        item_ids = lists(tf.constant(chunk), tf.constant(pairs, tf.float32),
                         tf.constant(by_demographics)).numpy()
        for out, rows in zip(by_pair, item_ids):
            out.update({user: [i for i in arrays.to_str(row) if i] for user, row in zip(chunk, rows)})
    varying = 1 if by_demographics else 0
    return {float(pair[varying]): metrics.mean_metrics(out, held, (10,), n_items)["ndcg@10"]
            for pair, out in zip(pairs, by_pair)}
