"""Pure logic of the evaluator: score a servable on held-out data against popularity."""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf

from models import features, records
from models.evaluation import metrics

MODEL, RETRIEVAL, POPULARITY, EASE = "recommender", "retrieval_only", "popularity", "ease"


def servable_lists(model, signature: str, users: Sequence[str], batch_size: int) -> Dict[str, List[str]]:
    """{user: item ids best first} from a loaded SavedModel's signature."""
    call = model.signatures[signature]
    out: Dict[str, List[str]] = {}
    for start in range(0, len(users), batch_size):
        chunk = list(users[start:start + batch_size])
        item_ids = call(user_id=tf.constant(chunk))["item_ids"].numpy()
        for user, row in zip(chunk, item_ids):
            out[user] = [i.decode("utf-8") for i in row]
    return out


def evaluate(model_dir: str, train_files: Sequence[str], eval_files: Sequence[str],
             num_items: int, config, ease: bool = False) -> Dict[str, object]:
    """Metrics of the recommender, its retrieval stage and popularity on the eval split.

    Args:
      model_dir: the recommender SavedModel (serving_default and retrieve signatures).
      train_files, eval_files: raw interaction examples.
      num_items: catalogue size, for coverage.
      config: an EvalConfig.
      ease: also fit and score EASE on the same split (a dense item x item
        inverse: for catalogues of thousands of items, as in the benchmark).

    Returns:
      {'metrics': {name: {metric: value}}, 'list_length': int, 'cutoffs': [...]}:
      cutoffs longer than the servable's list are left out.
    """
    train = records.read_columns(train_files)
    held = records.read_columns(eval_files)
    held_out = metrics.group_by_user(held[features.USER_ID], held[features.ITEM_ID])
    seen = metrics.group_by_user(train[features.USER_ID], train[features.ITEM_ID])
    users = sorted(held_out)
    model = tf.saved_model.load(model_dir)
    lists = {
        MODEL: servable_lists(model, "serving_default", users, config.batch_size),
        RETRIEVAL: servable_lists(model, "retrieve", users, config.batch_size),
    }
    length = max((len(v) for v in lists[MODEL].values()), default=0)
    lists[POPULARITY] = metrics.popularity_recommendations(
        metrics.popularity_ranking(train[features.ITEM_ID]), seen, users, length)
    if ease:
        lists[EASE] = metrics.ease_recommendations(seen, users, length)
    cutoffs = [k for k in config.cutoffs if k <= length] or [length]
    scores = {name: metrics.mean_metrics(recs, held_out, cutoffs, num_items)
              for name, recs in lists.items()}
    return {"metrics": scores, "list_length": length, "cutoffs": cutoffs}


def blessing(result: Mapping[str, object], gate_metric: str, min_lift: float) -> Dict[str, object]:
    """Whether the model beats popularity on ``gate_metric`` by ``min_lift``.

    Raises:
      ValueError: the gate metric was not computed.
    """
    metrics = result["metrics"]
    if gate_metric not in metrics[MODEL]:
        raise ValueError(f"gate metric '{gate_metric}' not computed; have {sorted(metrics[MODEL])}. "
                         f"Choose a cutoff <= the servable's list length ({result['list_length']}).")
    model_value = metrics[MODEL][gate_metric]
    baseline = metrics[POPULARITY][gate_metric]
    blessed = bool(model_value >= min_lift * baseline and model_value > 0)
    lift = model_value / baseline if baseline else float(np.inf)
    reason = (f"{gate_metric} {model_value:.4f} vs popularity {baseline:.4f} (lift {lift:.2f}, "
              f"required {min_lift:.2f})")
    return {"blessed": blessed, "model_blessed": blessed, "gate_metric": gate_metric,
            "model": model_value,
            "popularity": baseline, "lift": lift, "required_lift": min_lift,
            "reasons": [reason]}


def with_index_verdict(verdict: Dict[str, object], index_blessed: bool,
                       index_reason: str) -> Dict[str, object]:
    """The model's verdict, also requiring the index builder's blessing."""
    out = dict(verdict)
    out["index_blessed"] = bool(index_blessed)
    out["blessed"] = bool(verdict["blessed"]) and bool(index_blessed)
    out["reasons"] = list(verdict["reasons"]) + [index_reason]
    return out
