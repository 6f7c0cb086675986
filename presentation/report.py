"""The run report: one self-contained HTML page per run, under ``<output-dir>/reports/``.

Everything is inline (CSS, SVG charts); nothing is fetched when the page is
viewed, so it opens from a file, an artifact store or a mail attachment.
Sections: the verdict, data statistics (TFDV's numbers per split) and their
drift against the previous run's report, training curves, the whole-list
metrics of the model against popularity, EASE and the served model, the stock
Evaluator's slices, the index's recall and latency, and example lists for a
few users with titles. Each report's figures are also written as JSON beside
it: the next run's drift is computed against them.
"""

from __future__ import annotations

import glob
import json
import os
import time
from html import escape
from typing import Dict, List, Optional

import numpy as np

from presentation import charts, summary

REPORTS = "reports"
DRIFT_FLAG = 0.1  # L-infinity distance (categorical) or relative mean change (numeric) shown as drift


def reports_dir(output_dir: str) -> str:
    return os.path.join(output_dir, REPORTS)


def latest(output_dir: str) -> Optional[str]:
    """The newest report under ``output_dir``, or None."""
    found = sorted(glob.glob(os.path.join(reports_dir(output_dir), "report-*.html")))
    return found[-1] if found else None


# --- data statistics ---

def statistics(uri: str) -> Dict[str, Dict[str, object]]:
    """{split: {'examples': n, 'features': {name: figures}}} of a StatisticsGen artifact."""
    import tensorflow_data_validation as tfdv

    out = {}
    for path in sorted(glob.glob(os.path.join(uri, "Split-*", "FeatureStats.pb"))):
        split = os.path.basename(os.path.dirname(path))[len("Split-"):]
        dataset = tfdv.load_stats_binary(path).datasets[0]
        feats = {}
        for f in dataset.features:
            name = f.path.step[0] if f.path.step else f.name
            if f.HasField("num_stats"):
                s = f.num_stats
                common = s.common_stats
                feats[name] = {"kind": "numeric", "mean": s.mean, "std": s.std_dev, "min": s.min,
                               "max": s.max, "zeros": s.num_zeros,
                               "missing": common.num_missing}
            elif f.HasField("string_stats"):
                s = f.string_stats
                common = s.common_stats
                feats[name] = {"kind": "categorical", "unique": s.unique,
                               "missing": common.num_missing,
                               "top": {v.value: v.frequency / max(common.num_non_missing, 1)
                                       for v in s.top_values[:20]}}
        out[split] = {"examples": int(dataset.num_examples), "features": feats}
    return out


def drift(current: Dict[str, Dict], previous: Dict[str, Dict]) -> List[Dict[str, object]]:
    """Per split and feature: how far the current run's data moved from the previous run's.

    Categorical features: the L-infinity distance between their top values' shares
    (TFDV's drift measure); numeric ones: the relative change of the mean.
    """
    rows = []
    for split, stats in current.items():
        before = previous.get(split, {}).get("features", {})
        for name, now in stats["features"].items():
            then = before.get(name)
            if not then or then["kind"] != now["kind"]:
                continue
            if now["kind"] == "categorical":
                values = set(now["top"]) | set(then["top"])
                distance = max((abs(now["top"].get(v, 0.0) - then["top"].get(v, 0.0)) for v in values),
                               default=0.0)
                measure = "L-infinity of top values"
            else:
                distance = abs(now["mean"] - then["mean"]) / max(abs(then["mean"]), 1e-9)
                measure = "relative change of the mean"
            rows.append({"split": split, "feature": name, "distance": float(distance),
                         "measure": measure, "flag": bool(distance > DRIFT_FLAG)})
    return rows


# --- example lists ---

def example_lists(model_dir: str, train_files: List[str], eval_files: List[str], n_users: int = 3,
                  k: int = 10) -> List[Dict[str, object]]:
    """Lists of the holdout model for the eval users with the most held-out items, with titles."""
    import tensorflow as tf

    from models import arrays, features, records
    from models.evaluation import metrics

    held = records.read_columns(eval_files)
    train = records.read_columns(train_files)
    held_out = metrics.group_by_user(held[features.USER_ID], held[features.ITEM_ID])
    users = sorted(held_out, key=lambda u: (-len(held_out[u]), u))[:n_users]
    model = tf.saved_model.load(model_dir)
    lists = model.signatures["serving_default"](user_id=tf.constant(users))["item_ids"].numpy()

    def titles(ids):
        if not len(ids):
            return []
        out = model.signatures["lookup_titles"](item_ids=tf.constant(list(ids)))
        return arrays.to_str(next(iter(out.values())).numpy()).tolist()

    order = np.argsort(train[features.TIMESTAMP], kind="stable")
    out = []
    for user, row in zip(users, lists):
        items = [i for i in arrays.to_str(row).tolist() if i][:k]  # "" pads a short list
        history = [train[features.ITEM_ID][i] for i in order if train[features.USER_ID][i] == user][-5:]
        out.append({"user": user, "items": items, "titles": titles(items),
                    "hits": [i in held_out[user] for i in items],
                    "history": titles(history), "held_out": len(held_out[user])})
    return out


# --- the page ---

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:10px 14px;border-radius:6px;font-size:15px;margin:12px 0}
.ok{background:#e6f4ea;border:1px solid #34a853}.no{background:#fce8e6;border:1px solid #d93025}
.flag{color:#d93025;font-weight:bold}.hit{background:#e6f4ea}.muted{color:#777;font-size:12px}
.charts svg{margin:6px 12px 6px 0;vertical-align:top}
"""


def _table(header: List[str], rows: List[List[object]], cls: Optional[List[str]] = None) -> str:
    def cell(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"<td>{escape(str(v))}</td>"
        return f"<td class='n'>{v:.4f}</td>" if isinstance(v, float) else f"<td class='n'>{v:,}</td>"
    body = "".join(f"<tr{f' class={cls[i]!r}' if cls and cls[i] else ''}>"
                   + "".join(cell(v) for v in row) + "</tr>"
                   for i, row in enumerate(rows))
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
            + body + "</table>")


def _verdict(result: Dict[str, object]) -> str:
    verdict = (result.get("evaluation") or {}).get("blessing", {})
    if result.get("pushed"):
        head = f"Pushed: {result.get('pushed_to')}"
    elif result.get("failed"):
        head = f"Run failed: {result['failed']}. The served model is unchanged."
    else:
        head = ("Not pushed: " + ("; ".join(summary.failed_gates(result)) or "not blessed")
                + ". The served model is unchanged.")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.get("reasons", []))
    cls = "ok" if result.get("pushed") else "no"
    return f'<div class="verdict {cls}"><b>{escape(head)}</b><ul>{reasons}</ul></div>'


def _data_section(stats: Dict[str, Dict], drift_rows: Optional[List[Dict]]) -> str:
    if not stats:
        return "<p>No statistics in this run.</p>"
    parts = ["<p>" + ", ".join(f"{split}: {s['examples']:,} examples" for split, s in stats.items())
             + "</p>"]
    for split, s in stats.items():
        rows = []
        for name, f in sorted(s["features"].items()):
            if f["kind"] == "numeric":
                rows.append([name, "numeric", f["missing"], f"{f['mean']:.4g}", f"{f['std']:.4g}",
                             f"{f['min']:.4g}", f"{f['max']:.4g}", ""])
            else:
                top = ", ".join(f"{v} ({share:.1%})" for v, share in list(f["top"].items())[:3])
                rows.append([name, "categorical", f["missing"], "", "", "", "", f"{f['unique']:,} unique; "
                             f"top {top}"])
        parts.append(f"<h3>{escape(split)}</h3>" + _table(
            ["feature", "kind", "missing", "mean", "std", "min", "max", "values"], rows))
    if drift_rows is None:
        parts.append("<p class='muted'>No previous report in this output directory: no drift.</p>")
    else:
        flagged = [r for r in drift_rows if r["flag"]]
        parts.append(f"<h3>Drift against the previous run</h3><p>{len(flagged)} of {len(drift_rows)} "
                     f"feature/split pairs moved more than {DRIFT_FLAG}.</p>")
        parts.append(_table(["split", "feature", "distance", "measure"],
                            [[r["split"], r["feature"], r["distance"], r["measure"]]
                             for r in sorted(drift_rows, key=lambda r: -r["distance"])[:15]],
                            ["flag" if r["flag"] else "" for r in
                             sorted(drift_rows, key=lambda r: -r["distance"])[:15]]))
    return "".join(parts)


def _gate_section(result: Dict[str, object]) -> str:
    """Every TFDV drift distance from the served version's data and every serving-skew distance
    of the request log, with the schema's thresholds."""
    drift = result.get("drift") or {}
    off = "" if drift.get("gate") else " (off for this run: --accept-drift)"
    if not drift.get("splits"):
        parts = ["<p class='muted'>No served version's data to compare with: the drift gate had "
                 "nothing to check.</p>"]
    else:
        rows = [[split, r["feature"], r["comparator"], r["distance"], r["threshold"]]
                for split, measured in sorted(drift["splits"].items()) for r in measured]
        parts = [f"<p>{escape(summary.drift_line(result))}. The gate reads the train split{off}.</p>",
                 _table(["split", "feature", "comparator", "distance", "threshold"], rows,
                        ["flag" if r[3] > r[4] else "" for r in rows])]
    skew = drift.get("skew")
    if not skew:
        parts.append("<p class='muted'>Serving skew is not computed: the run was given no request "
                     "log (--request-log).</p>")
    else:
        rows = [[r["feature"], r["comparator"], r["distance"], r["threshold"]] for r in skew["rows"]]
        parts.append(f"<h3>Serving skew</h3><p>{escape(summary.skew_line(result))}. The gate "
                     f"reads every distance{off}.</p>")
        if rows:
            parts.append(_table(["feature", "comparator", "distance", "threshold"], rows,
                                ["flag" if r[2] > r[3] else "" for r in rows]))
    return "".join(parts)


def _training_section(result: Dict[str, object]) -> str:
    parts = []
    retrieval = result.get("retrieval_training") or {}
    recall_key = next((k for k in retrieval if k.startswith("val_recall_at_")), None)
    parts.append(charts.line_chart({"train loss": retrieval.get("loss", [])},
                                   "Retrieval: training loss"))
    if recall_key:
        parts.append(charts.line_chart({recall_key.replace("val_", "eval "): retrieval[recall_key]},
                                       "Retrieval: held-out recall per epoch"))
    refit = retrieval.get("refit") or {}
    parts.append(charts.line_chart({"refit loss": refit.get("loss", [])},
                                   "Retrieval refit on train + eval"))
    text = (f"<p>{retrieval.get('epochs_run', 0)} epochs, best {retrieval.get('best_epoch')}; "
            f"{retrieval.get('examples_per_second', 0):,.0f} examples/s on "
            f"{escape(', '.join(retrieval.get('devices', [])))}.</p>") if retrieval else ""
    ranking = result.get("ranking_training") or {}
    if "ranker_used" in ranking:
        text += (f"<p>Ranking: eval NDCG@10 {ranking['eval_ndcg@10_ranked_order']:.4f} ranked vs "
                 f"{ranking['eval_ndcg@10_retrieval_order']:.4f} in retrieval order; "
                 f"{'ranker used' if ranking['ranker_used'] else 'ranker not used'}.</p>")
    return text + '<div class="charts">' + "".join(p for p in parts if p) + "</div>"


def _metrics_section(evaluation: Dict[str, object], baseline_line: str) -> str:
    if not evaluation:
        return "<p>No evaluation in this run.</p>"
    table = evaluation["metrics"]
    keys = [k for k in next(iter(table.values())) if k != "users"]
    rows = [[name] + [values.get(k, float("nan")) for k in keys] for name, values in table.items()]
    parts = [f"<p>{escape(baseline_line)}</p>",
             _table(["model"] + keys, rows)]
    shown = [k for k in keys if k.split("@")[0] in ("recall", "ndcg", "map", "hr")
             and k.endswith(f"@{evaluation['cutoffs'][0]}")] + ["mrr"]
    parts.append('<div class="charts">' + charts.bar_chart(
        shown, {name: [values.get(k, 0.0) for k in shown] for name, values in table.items()},
        "Held-out metrics by model (eval split)", width=720) + "</div>")
    return "".join(parts)


def _tfma_section(tfma: Optional[Dict[str, object]]) -> str:
    if not tfma:
        return "<p>The stock Evaluator did not run.</p>"
    slices = tfma["slices"]
    overall = slices.get("Overall", {})
    names = [n for n in sorted(overall)]
    validation = tfma["validation"]
    parts = [f"<p>Validation: {'thresholds met' if validation['ok'] else 'FAILED'}"
             + ("" if validation["baseline"] else " (no served model: change thresholds skipped)")
             + "</p>"]
    if validation["failures"]:
        parts.append("<ul>" + "".join(f"<li class='flag'>{escape(f)}</li>"
                                      for f in validation["failures"]) + "</ul>")
    header = ["slice"] + [f"{n} ({m})" for n in names for m in ("model", "served")
                          if m == "model" or validation["baseline"]]
    rows = []
    for name in ["Overall"] + sorted(s for s in slices if s != "Overall"):
        values = slices[name]
        row = [name]
        for n in names:
            row.append(values.get(n, {}).get("candidate", float("nan")))
            if validation["baseline"]:
                row.append(values.get(n, {}).get("baseline", float("nan")))
        rows.append(row)
    ndcg = next((n for n in names if n.startswith("ndcg")), None)
    if ndcg:
        bars = [(name, values[ndcg]["candidate"]) for name, values in slices.items()
                if name != "Overall" and "candidate" in values.get(ndcg, {})]
        parts.append('<div class="charts">' + charts.hbar_chart(
            sorted(bars, key=lambda r: r[1]), f"{ndcg} by slice") + "</div>")
    parts.append(_table(header, rows))
    return "".join(parts)


def _index_section(index: Dict[str, object]) -> str:
    if not index:
        return "<p>No index in this run.</p>"
    recalls = {k: v for k, v in index.items() if k.startswith("recall@")}
    rows = [["settings", str(index.get("settings", index.get("flavour")))],
            ["items", index.get("items")], ["known users", index.get("users")]]
    rows += [[f"{k} against exact search", v] for k, v in recalls.items()]
    rows += [["search p50 (ms)", index.get("search_ms_p50")], ["search p99 (ms)", index.get("search_ms_p99")],
             ["queries/s batched", index.get("search_qps_batched")],
             ["request p50 through the servable (ms)", index.get("request_ms_p50")],
             ["verdict", index.get("reason", "")]]
    return _table(["", "value"], [[k, v if v is not None else ""] for k, v in rows])


def _lists_section(lists: List[Dict[str, object]]) -> str:
    if not lists:
        return "<p>No example lists.</p>"
    parts = ["<p class='muted'>Lists of the holdout model (it has not seen the eval split) for the "
             "eval users with the most held-out items; a green row is an item the user went on to "
             "interact with.</p>"]
    for entry in lists:
        rows = [[i + 1, item, title] for i, (item, title) in enumerate(zip(entry["items"],
                                                                           entry["titles"]))]
        parts.append(f"<h3>User {escape(entry['user'])} ({entry['held_out']} held-out items)</h3>"
                     f"<p class='muted'>Recently: {escape('; '.join(entry['history']))}</p>"
                     + _table(["#", "item", "title"], rows,
                              ["hit" if h else "" for h in entry["hits"]]))
    return "".join(parts)


def render(result: Dict[str, object], stats: Dict[str, Dict], drift_rows: Optional[List[Dict]],
           lists: List[Dict[str, object]], title: str) -> str:
    """The report page."""
    evaluation = result.get("evaluation") or {}
    components = _table(["component", "seconds", "state"],
                        [[c["component"], c["seconds"], c["state"].lower()]
                         for c in result.get("components", [])])
    sections = [
        ("Verdict", _verdict(result)),
        ("Data", _data_section(stats, drift_rows)),
        ("Drift and skew gates (TFDV: the served version's data, served requests)",
         _gate_section(result)),
        ("Training", _training_section(result)),
        ("Held-out metrics", _metrics_section(evaluation, summary.baseline_line(result))),
        ("Stock Evaluator (TFMA) slices", _tfma_section(evaluation.get("tfma"))),
        ("Index", _index_section(result.get("index") or {})),
        ("Example lists", _lists_section(lists)),
        ("Components", components),
    ]
    body = "".join(f'<h2 id="{escape(name.lower().split()[0])}">{escape(name)}</h2>{html}'
                   for name, html in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>"
            f"<p class='muted'>Written {time.strftime('%Y-%m-%d %H:%M:%S')}; "
            f"self-contained (nothing is fetched to view it).</p>{body}</body></html>")


def write(output_dir: str, result: Dict[str, object], pipeline_name: str) -> str:
    """Writes this run's report (and its figures for the next run's drift); returns its path."""
    folder = reports_dir(output_dir)
    os.makedirs(folder, exist_ok=True)
    previous = sorted(glob.glob(os.path.join(folder, "figures-*.json")))
    stats = statistics(result["statistics_uri"]) if result.get("statistics_uri") else {}
    drift_rows = None
    if previous:
        with open(previous[-1]) as f:
            drift_rows = drift(stats, json.load(f).get("statistics", {}))
    lists = []
    if result.get("holdout_uri") and result.get("examples_uri"):
        from models import features, records

        split = os.path.join(result["examples_uri"], "Split-{}", "*")
        lists = example_lists(os.path.join(result["holdout_uri"], "Format-Serving"),
                              records.expand(split.format(features.TRAIN)),
                              records.expand(split.format(features.EVAL)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(folder, f"report-{stamp}.html")
    html = render(result, stats, drift_rows, lists, f"{pipeline_name}: run report")
    with open(path + ".tmp", "w") as f:
        f.write(html)
    os.replace(path + ".tmp", path)
    with open(os.path.join(folder, f"figures-{stamp}.json"), "w") as f:
        json.dump({"statistics": stats}, f)
    return path
