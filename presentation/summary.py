"""The end-of-run summary, read back from ML Metadata: what ran, how long, what was pushed."""

from __future__ import annotations

import json
import os
from typing import Dict, List

import tensorflow as tf
from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from components.assembler.executor import ASSEMBLY_FILE
from components.evaluator.executor import METRICS_FILE
from components.index.executor import STATS_FILE
from components.validation.executor import DRIFT_FILE
from pipeline.config import PipelineConfig
from pipeline.pipeline import SERVED_MODEL

_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
_TRAINING_KEYS = {"RetrievalTrainer": "retrieval_training", "RankingTrainer": "ranking_training"}


def node_id(store, execution) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[-1]
    return str(execution.id)


def state_of(execution) -> str:
    """The execution's state name: 'COMPLETE', 'CACHED', 'RUNNING', 'FAILED', ..."""
    return _STATES.get(execution.last_known_state, "?")


def seconds_of(execution) -> float:
    return (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000


def run_executions(store, started: float) -> List[metadata_store_pb2.Execution]:
    """The executions created since ``started`` (epoch seconds, one second of slack), oldest first."""
    since_ms = int(started * 1000) - 1000
    return sorted((e for e in store.get_executions() if e.create_time_since_epoch >= since_ms),
                  key=lambda e: e.create_time_since_epoch)


def _outputs(store, execution) -> List[metadata_store_pb2.Artifact]:
    events = store.get_events_by_execution_ids([execution.id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    return store.get_artifacts_by_id(ids) if ids else []


def _read_json(uri: str, name: str) -> Dict:
    path = os.path.join(uri, name)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def collect(config: PipelineConfig, started: float) -> Dict[str, object]:
    """Components of the run that started at ``started`` (epoch seconds), with times and results."""
    connection = metadata.sqlite_metadata_connection_config(config.metadata_path)
    store = metadata_store.MetadataStore(connection)
    executions = run_executions(store, started)
    result: Dict[str, object] = {"components": [], "pushed": False}
    try:
        model_run = store.get_artifact_type("ModelRun").id
    except errors.NotFoundError:  # no trainer has run in this store yet
        model_run = None
    for execution in executions:
        node = node_id(store, execution)
        result["components"].append({"component": node, "seconds": round(seconds_of(execution), 1),
                                      "state": state_of(execution),
                                      "started": execution.create_time_since_epoch / 1000,
                                      "ended": execution.last_update_time_since_epoch / 1000})
        if node == SERVED_MODEL and "reason" in execution.custom_properties:
            result["baseline_reason"] = execution.custom_properties["reason"].string_value
        if node == SERVED_MODEL and "warm_start" in execution.custom_properties:
            result["warm_start_reason"] = execution.custom_properties["warm_start"].string_value
        for artifact in _outputs(store, execution):
            props = artifact.custom_properties
            if node == "InteractionsExampleGen":
                result["examples_uri"] = artifact.uri
                if "span_names" in props:
                    result["spans"] = props["span_names"].string_value.split(",")
            elif node == "StatisticsGen":
                result["statistics_uri"] = artifact.uri
            elif node == "StrictExampleValidator":
                drift = _read_json(artifact.uri, DRIFT_FILE)
                if drift:
                    result["drift"] = drift
            elif node == "RecommenderAssembler" and "/holdout_model/" in artifact.uri:
                result["holdout_uri"] = artifact.uri
            elif node == "RecommenderAssembler":
                figures = _read_json(artifact.uri, ASSEMBLY_FILE)
                if figures:
                    result["assembly"] = figures
            elif node in _TRAINING_KEYS and artifact.type_id == model_run:
                result[_TRAINING_KEYS[node]] = _read_json(artifact.uri, "training.json")
            elif node == "IndexBuilder":
                # Of its two outputs only the index holds the figures.
                figures = _read_json(artifact.uri, STATS_FILE)
                if figures:
                    result["index"] = figures
            elif node == "RecommenderEvaluator":
                # Of its two outputs only the ModelEvaluation holds the metrics file.
                evaluation = _read_json(artifact.uri, METRICS_FILE)
                if evaluation:
                    result["evaluation"] = evaluation
            elif node == SERVED_MODEL and "/warm_start/" in artifact.uri:
                result["warm_start_from"] = props["served_version"].string_value
            elif node == SERVED_MODEL:
                result["baseline"] = {"version": props["served_version"].string_value,
                                      "uri": artifact.uri}
            elif node == "Pusher":
                result["pushed"] = bool(props["pushed"].int_value) if "pushed" in props else False
                if "pushed_destination" in props:
                    result["pushed_to"] = props["pushed_destination"].string_value
    result["wall_seconds"] = round(sum(c["seconds"] for c in result["components"]), 1)
    return result


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def failed_gates(result: Dict[str, object]) -> List[str]:
    """Why the model was not blessed, gate by gate."""
    verdict = (result.get("evaluation") or {}).get("blessing", {})
    if verdict:
        return list(verdict.get("failures", []))
    index = result.get("index") or {}
    return [index["reason"]] if "blessed" in index and not index["blessed"] else []


def _distances(rows) -> str:
    """Distances, largest share of their threshold first (the first four)."""
    rows = sorted(rows, key=lambda r: -r["distance"] / max(r["threshold"], 1e-12))
    return ", ".join(
        f"{r['feature']} {r['distance']:.4f} (<= {r['threshold']:g})" if r["distance"] <= r["threshold"]
        else f"{r['feature']} {r['distance']:.4f} (> {r['threshold']:g}, accepted)" for r in rows[:4])


def drift_line(result: Dict[str, object]) -> str:
    """The train split's drift from the served version's data, largest share of its threshold first."""
    drift = result.get("drift") or {}
    if not drift.get("splits"):
        return "Drift: no served data to compare with"
    return (f"Drift from the served version's data (TFDV, train split): "
            f"{_distances(drift['splits'].get('train', []))}")


def skew_line(result: Dict[str, object]) -> str:
    """Serving skew of the request log's features against the train split's, or why none."""
    skew = (result.get("drift") or {}).get("skew")
    if not skew:
        return "Serving skew: not computed (no request log: --request-log)"
    if not skew["rows"]:
        return (f"Serving skew: {skew['requests']:,} requests in {skew['request_log']} carry no "
                f"feature with a skew comparator (age, gender, occupation)")
    return (f"Serving skew (TFDV, {skew['requests']:,} requests in {skew['request_log']} vs the "
            f"train split): {_distances(skew['rows'])}")


def warm_start_line(result: Dict[str, object]) -> str:
    """How the retrieval models started: from the served version's weights, or cold and why."""
    started = ((result.get("retrieval_training") or {}).get("warm_start") or {}).get("holdout") or {}
    if started.get("warm"):
        items = started.get("vocabularies", {}).get("item_id_vocab", {})
        users = started.get("vocabularies", {}).get("user_id_vocab", {})
        return (f"Warm start from served version {result.get('warm_start_from')}: items "
                f"{items.get('kept', 0):,} kept, {items.get('new', 0):,} new, {items.get('gone', 0):,} "
                f"gone; users {users.get('kept', 0):,} kept, {users.get('new', 0):,} new; eval "
                f"recall {started.get('recall_before_training', 0):.4f} before training"
                + (" (no epoch beat it: the served weights kept)" if started.get("kept_served_weights")
                   else ""))
    why = started.get("reason") or result.get("warm_start_reason") or "not run"
    served = result.get("warm_start_reason", "")
    if started.get("reason") == "no served model to start from" and served.startswith("cold: "):
        why = served[len("cold: "):]
    return f"Cold start: {why}"


def baseline_line(result: Dict[str, object]) -> str:
    if result.get("baseline"):
        return (f"Compared with the served model: {result.get('baseline_reason')} (its holdout "
                f"twin, scored on this run's eval split)")
    return (f"No comparison with a served model: {result.get('baseline_reason', 'not run')}; "
            f"the stock Evaluator's change threshold was skipped")


def _tfma_lines(tfma: Dict[str, object]) -> List[str]:
    """The stock Evaluator's overall figures and its worst slices."""
    overall = tfma["slices"].get("Overall", {})
    names = [n for n in sorted(overall) if n != "example_count"]
    lines = [f"Stock Evaluator (TFMA) on {int(overall.get('example_count', {}).get('candidate', 0)):,} "
             f"requests (each user's retrieved candidates): "
             + ", ".join(f"{n} {overall[n]['candidate']:.4f}"
                         + (f" (served {overall[n]['baseline']:.4f})" if "baseline" in overall[n] else "")
                         for n in names)]
    ndcg = next((n for n in names if n.startswith("ndcg")), None)
    if ndcg:
        sliced = sorted((values[ndcg]["candidate"], name) for name, values in tfma["slices"].items()
                        if name != "Overall" and "candidate" in values.get(ndcg, {}))
        if sliced:
            lines.append(f"  {ndcg} by slice, lowest: " + ", ".join(f"{n} {v:.4f}" for v, n in sliced[:3])
                         + "; highest: " + ", ".join(f"{n} {v:.4f}" for v, n in sliced[-2:]))
    return lines


def _tried(chosen: Dict[str, object], setting: str) -> str:
    tried = chosen.get("weight_tried", {})
    return (": eval NDCG@10 " + ", ".join(f"{float(w):g}: {v:.4f}" for w, v in tried.items())
            if tried else f" (set in rerank.{setting})")


def _fusion_lines(assembly: Dict[str, object]) -> List[str]:
    """The second lists' part of the served lists (recommender/assembly.py), as chosen on the
    eval split."""
    holdout = assembly.get("holdout") or assembly.get("deployed") or {}
    chosen, prior = holdout.get("ease"), holdout.get("popularity_prior")
    lines = []
    if chosen and not chosen.get("fitted"):
        lines.append(f"EASE: not fused ({chosen.get('reason')}); the ranked list is served alone")
    elif chosen:
        lines.append(f"EASE (l2 {chosen['l2']:g}) fused with the ranked list at weight "
                     f"{chosen['weight']:g}" + (" (the ranked list alone)" if not chosen["weight"]
                                                 else "") + _tried(chosen, "ease_weight"))
    if prior:
        lines.append(f"Requests by demographics alone: popularity fused in at weight "
                     f"{prior['weight']:g}" + _tried(prior, "popularity_weight"))
    return lines


def render(result: Dict[str, object]) -> str:
    """The summary as text for the terminal."""
    lines = ["", "Run summary", "-----------"]
    for c in result["components"]:
        lines.append(f"  {c['component']:<24} {c['seconds']:>8.1f} s  {c['state'].lower()}")
    lines.append(f"  {'total':<24} {result['wall_seconds']:>8.1f} s")
    if result.get("spans"):
        names = result["spans"]
        lines.append(f"Data: {len(names)} span(s), {names[0]}"
                     + (f" .. {names[-1]}" if len(names) > 1 else ""))
    if result.get("drift") or result.get("warm_start_from"):
        lines.append(drift_line(result))
    if (result.get("drift") or {}).get("skew"):
        lines.append(skew_line(result))
    training = result.get("retrieval_training")
    if training:
        lines.append(warm_start_line(result))
        key = next((k for k in training if k.startswith("val_recall_at_")), None)
        best = training.get("best_epoch")
        lines.append(f"Retrieval training: {training.get('epochs_run')} epochs, best {best}"
                     + (f" ({key.replace('val_', 'eval ')} {training[key][best - 1]:.4f})"
                        if key and training.get(key) and best else "")
                     + f", {training.get('examples_per_second', 0):,.0f} examples/s on "
                     f"{', '.join(training.get('devices', []))}")
        refit = training.get("refit")
        lines.append(f"  refit for deployment on train + eval: {refit['epochs']} epochs over "
                     f"{refit['train_examples']:,} interactions in {refit['train_seconds']:.0f} s"
                     if refit else "  no refit: the deployed model learned from the train split only")
    ranking = result.get("ranking_training")
    if ranking and "ranker_used" in ranking:
        started = (ranking.get("warm_start") or {}).get("holdout") or {}
        start = (f"{started['epochs']} epochs from the served ranker" if started.get("warm") else
                 f"{started['epochs']} epochs from scratch" if "epochs" in started else "")
        lines.append(f"Ranking ({ranking.get('loss', '?')} loss, {ranking.get('train_lists', 0):,} "
                     f"training lists{', ' + start if start else ''}): eval NDCG@10 "
                     f"{ranking['eval_ndcg@10_ranked_order']:.4f} "
                     f"ranked vs {ranking['eval_ndcg@10_retrieval_order']:.4f} in retrieval "
                     f"order, same lists: "
                     + ("ranker used" if ranking["ranker_used"]
                        else "ranker not used, the recommender serves retrieval's order"))
        if ranking.get("refit_lists"):
            lines.append(f"  refit for deployment on {ranking['refit_lists']:,} lists from every "
                         f"interaction")
    lines += _fusion_lines(result.get("assembly") or {})
    index = result.get("index")
    if index:
        lines.append(f"Index: {index.get('settings', index.get('flavour'))} over "
                     f"{index.get('items')} items ({index.get('new_items', 0)} without "
                     f"interactions), {index.get('users')} known users; embedded in "
                     f"{index.get('embed_seconds')} s, built in {index.get('build_seconds')} s, "
                     f"index {_size(index.get('index_bytes', 0))}")
        if "gate" in index:
            recalls = ", ".join(f"{k} {v:.4f}" for k, v in index.items() if k.startswith("recall@"))
            lines.append(f"  vs exact search on {index.get('eval_queries')} sampled queries: "
                         f"{recalls}; search p50 {index.get('search_ms_p50', 0):.3f} ms, p99 "
                         f"{index.get('search_ms_p99', 0):.3f} ms, "
                         f"{index.get('search_qps_batched', 0):,.0f} queries/s batched; request "
                         f"p50 {index.get('request_ms_p50', 0):.2f} ms through the servable")
            lines.append(f"  {'Blessed' if index.get('blessed') else 'NOT blessed'}: "
                         f"{index.get('reason')}")
    evaluation = result.get("evaluation")
    if evaluation:
        metrics = evaluation["metrics"]
        keys = [k for k in next(iter(metrics.values())) if k != "users"]
        lines.append(f"Held-out evaluation of the holdout models on the pipeline's eval split "
                     f"({int(next(iter(metrics.values()))['users'])} users; the push gate; "
                     f"the pushed model knows these interactions too):")
        lines.append("  " + f"{'':<16}" + "".join(f"{k:>13}" for k in keys))
        for name, values in metrics.items():
            lines.append("  " + f"{name:<16}" + "".join(f"{values[k]:>13.4f}" for k in keys))
        lines.append(baseline_line(result))
        tfma = evaluation.get("tfma")
        if tfma:
            lines += _tfma_lines(tfma)
        verdict = evaluation.get("blessing", {})
        lines.append(f"Blessed: {verdict.get('blessed')}")
        lines += [f"  {reason}" for reason in verdict.get("reasons", [])]
    if result.get("report"):
        lines.append(f"Report: {result['report']} (recsys report opens the newest)")
    if result.get("pushed"):
        lines.append(f"Pushed to: {result.get('pushed_to')}")
    elif result.get("failed"):
        lines.append("Not pushed: the run failed. The served model is unchanged.")
    else:
        why = "; ".join(failed_gates(result)) or "the model was not blessed"
        lines.append(f"Not pushed: {why}. The served model is unchanged.")
    return "\n".join(lines)
