"""Pure logic of the evaluator: score a servable on held-out data against popularity."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from models import features, records
from models.evaluation import candidates, metrics

MODEL, RETRIEVAL, POPULARITY, EASE, SERVED = ("recommender", "retrieval_only", "popularity", "ease",
                                              "served")


def servable_lists(model, signature: str, users: Sequence[str], batch_size: int) -> Dict[str, List[str]]:
    """{user: item ids best first} from a loaded SavedModel's signature."""
    call = model.signatures[signature]
    out: Dict[str, List[str]] = {}
    for start in range(0, len(users), batch_size):
        chunk = list(users[start:start + batch_size])
        item_ids = call(user_id=tf.constant(chunk))["item_ids"].numpy()
        for user, row in zip(chunk, item_ids):
            out[user] = [i.decode("utf-8") for i in row if i]  # "" pads a short list
    return out


def evaluate(model_dir: str, train_files: Sequence[str], eval_files: Sequence[str],
             catalogue_files: Sequence[str], config, served_dir: Optional[str] = None,
             ease: Optional[bool] = None) -> Dict[str, object]:
    """Whole-list metrics of the recommender, its retrieval stage, popularity and the served model.

    Args:
      model_dir: the recommender SavedModel (serving_default and retrieve signatures)
        that has not seen ``eval_files``.
      train_files, eval_files: raw interaction examples.
      catalogue_files: catalogue examples (its size for coverage, genres for diversity).
      config: an EvalConfig.
      served_dir: the served model's holdout twin (recommender/baseline.py), or None.
      ease: also fit and score EASE on the same split (None: when its size is within
        ``config.ease_max_size`` and ``config.ease_max_cells``).

    Returns:
      {'metrics': {name: {metric: value}}, 'list_length': int, 'cutoffs': [...]}:
      cutoffs longer than the servable's list are left out.
    """
    train = records.read_columns(train_files)
    held = records.read_columns(eval_files)
    held_out = metrics.group_by_user(held[features.USER_ID], held[features.ITEM_ID])
    seen = metrics.group_by_user(train[features.USER_ID], train[features.ITEM_ID])
    genres = candidates.item_genres(catalogue_files)
    counts = metrics.item_counts(train[features.ITEM_ID])
    users = sorted(held_out)
    model = tf.saved_model.load(model_dir)
    lists = {
        MODEL: servable_lists(model, "serving_default", users, config.batch_size),
        RETRIEVAL: servable_lists(model, "retrieve", users, config.batch_size),
    }
    if served_dir:
        lists[SERVED] = servable_lists(tf.saved_model.load(served_dir), "serving_default", users,
                                       config.batch_size)
    length = max((len(v) for v in lists[MODEL].values()), default=0)
    lists[POPULARITY] = metrics.popularity_recommendations(
        metrics.popularity_ranking(train[features.ITEM_ID]), seen, users, length)
    trained = len({item for items in seen.values() for item in items})
    fits = metrics.ease_fits(len(seen), trained, config.ease_max_size, config.ease_max_cells)
    if ease if ease is not None else fits:
        lists[EASE] = metrics.ease_recommendations(seen, users, length)
    cutoffs = [k for k in config.cutoffs if k <= length] or [length]
    scores = {name: {**metrics.mean_metrics(recs, held_out, cutoffs, len(genres)),
                     **metrics.list_qualities(recs, users, cutoffs[0], genres, counts)}
              for name, recs in lists.items()}
    return {"metrics": scores, "list_length": length, "cutoffs": cutoffs}


def blessing(result: Mapping[str, object], config) -> Dict[str, object]:
    """Whether the model beats popularity on the gate metric by the lift and, when a served
    model was scored, is not worse than it beyond ``config.max_drop_vs_served``.

    Raises:
      ValueError: the gate metric was not computed.
    """
    gate_metric, min_lift = config.gate_metric, config.min_lift_over_popularity
    metrics = result["metrics"]
    if gate_metric not in metrics[MODEL]:
        raise ValueError(f"gate metric '{gate_metric}' not computed; have {sorted(metrics[MODEL])}. "
                         f"Choose a cutoff <= the servable's list length ({result['list_length']}).")
    model_value = metrics[MODEL][gate_metric]
    baseline = metrics[POPULARITY][gate_metric]
    beats_popularity = bool(model_value >= min_lift * baseline and model_value > 0)
    lift = model_value / baseline if baseline else float(np.inf)
    gates = [(beats_popularity, f"{gate_metric} {model_value:.4f} vs popularity {baseline:.4f} "
                                f"(lift {lift:.2f}, required {min_lift:.2f})")]
    out = {"gate_metric": gate_metric, "model": model_value, "popularity": baseline, "lift": lift,
           "required_lift": min_lift}
    if SERVED in metrics:
        served = metrics[SERVED][gate_metric]
        floor = (1.0 - config.max_drop_vs_served) * served
        not_worse = bool(model_value >= floor)
        out.update(served=served, served_floor=floor, not_worse_than_served=not_worse)
        gates.append((not_worse, f"{gate_metric} {model_value:.4f} vs served model {served:.4f} "
                                 f"({'within' if not_worse else 'beyond'} the "
                                 f"{config.max_drop_vs_served:.0%} tolerance)"))
    out["blessed"] = out["model_blessed"] = all(ok for ok, _ in gates)
    out["reasons"] = [reason for _, reason in gates]
    # The reasons of the gates that failed, for "not pushed because ...".
    out["failures"] = [reason for ok, reason in gates if not ok]
    return out


def with_verdict(verdict: Dict[str, object], key: str, ok: bool, reason: str) -> Dict[str, object]:
    """The verdict, also requiring another gate's (``key``: e.g. 'index_blessed')."""
    out = dict(verdict)
    out[key] = bool(ok)
    out["blessed"] = bool(verdict["blessed"]) and bool(ok)
    out["reasons"] = list(verdict["reasons"]) + [reason]
    out["failures"] = list(verdict.get("failures", [])) + ([] if ok else [reason])
    return out
