"""Continuous-training benchmark: the data replayed span by span, warm runs beside cold ones.

    make bench-continuous [ARGS="--spans 4 --data FOLDER"]
    python -m bench.continuous --spans 4 --output bench/results/continuous

The interactions (the embedded default data, or any folder the readers know) are cut by time
into K spans of equal size (one second never in two spans), each written as a span folder
(``span-1/`` ...: its interactions, and the users and items files). Then, for each step t =
1 .. K-1, the data folder holds spans 1..t only (what had arrived by then) and ``recsys run``
runs on it twice, each in a fresh process as a user runs it, each with its own output and
serving directories, every step in the same ones:

  warm  the default: the retrieval models start from the track's served version;
  cold  ``--cold``: from scratch, on the same window.

Each track's served model after step t (the new push, or the one still served when the gates
refused it) is asked through ``serving_default`` for every user with interactions in span
t+1, and scored on that span's items the user had not interacted with before (seen items are
never hits). Step 1 is cold on both tracks (nothing is served yet): the averages are over the
steps where a warm start could happen. Wall time is the whole ``recsys run`` process.

Writes ``continuous.json`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WARM, COLD = "warm", "cold"
K = 10  # the served list's length and the metrics' cutoff


def cut(times: Sequence[int], count: int) -> np.ndarray:
    """Each interaction's span (0 .. count-1): equal shares by time, cut between seconds."""
    times = np.asarray(times, np.int64)
    order = np.sort(times)
    cuts = [order[min(len(order) - 1, (len(order) * k) // count)] for k in range(1, count)]
    return np.searchsorted(np.asarray(cuts), times, side="right")


def write_spans(dataset, count: int, root: str) -> List[str]:
    """``dataset`` as ``count`` span folders under ``root`` (canonical layout, every span with
    the users and items files); returns them, oldest first."""
    from models import features
    from models.data import writer

    inter = dataset.interactions
    span_of = cut(inter[features.TIMESTAMP], count)
    rows = list(zip(inter[features.USER_ID], inter[features.ITEM_ID], inter[features.TIMESTAMP],
                    inter[features.RATING]))
    folders = []
    for k in range(count):
        folder = os.path.join(root, f"span-{k + 1}")
        writer.write_canonical(folder, [r for r, s in zip(rows, span_of) if s == k], dataset.users,
                               dataset.items)
        folders.append(folder)
    return folders


def window_root(spans: Sequence[str], t: int, work: str) -> str:
    """A data folder holding spans 1..t (links to them): the data as it stood after span t."""
    root = os.path.join(work, f"arrived-{t}")
    os.makedirs(root, exist_ok=True)
    for span in spans[:t]:
        link = os.path.join(root, os.path.basename(span))
        if not os.path.exists(link):
            os.symlink(os.path.abspath(span), link)
    return root


def next_span(dataset, span_of: np.ndarray, t: int):
    """({user: items of span t+1 the user had not interacted with in spans 1..t}, seen)."""
    from models import features
    from models.evaluation import metrics

    inter = dataset.interactions
    before = span_of < t
    seen = metrics.group_by_user([u for u, b in zip(inter[features.USER_ID], before) if b],
                                 [i for i, b in zip(inter[features.ITEM_ID], before) if b])
    later = metrics.group_by_user(
        [u for u, s in zip(inter[features.USER_ID], span_of) if s == t],
        [i for i, s in zip(inter[features.ITEM_ID], span_of) if s == t])
    future = {u: items - seen.get(u, set()) for u, items in later.items()}
    return {u: items for u, items in future.items() if items}, seen


def score(serving_dir: str, future: Dict[str, set], num_items: int) -> Dict[str, float]:
    """The served model's lists through ``serving_default``, scored on ``future``."""
    import tensorflow as tf

    from models.evaluation import evaluate, metrics
    from recommender import client
    from recommender.config import base_of

    model = tf.saved_model.load(client.latest_version(base_of(serving_dir)))
    lists = evaluate.servable_lists(model, "serving_default", sorted(future), 256)
    return metrics.mean_metrics(lists, future, (K,), num_items)


def run(data_root: str, track_dir: str, cold: bool, args: Sequence[str]) -> Dict[str, object]:
    """One ``recsys run`` in a fresh process; its summary and wall seconds."""
    out = os.path.join(track_dir, "out")
    command = [sys.executable, "-m", "cli", "run", "--data", data_root, "--output-dir", out,
               "--serving-dir", os.path.join(track_dir, "serving"), "--top-k", str(K), *args]
    if cold:
        command.append("--cold")
    written = os.path.join(out, "summary.json")
    if os.path.exists(written):
        os.remove(written)  # the previous step's
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.time() - started
    # 1 with a summary: the gates refused the push, the served model is unchanged.
    if done.returncode not in (0, 1) or not os.path.exists(written):
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                           f"\n{done.stderr[-3000:]}")
    with open(written) as f:
        summary = json.load(f)
    return {"seconds": seconds, "summary": summary}


def _epochs(summary: Dict[str, object]) -> Dict[str, object]:
    training = summary.get("retrieval_training") or {}
    started = (training.get("warm_start") or {}).get("holdout") or {}
    return {"epochs_run": training.get("epochs_run"), "best_epoch": training.get("best_epoch"),
            "refit_epochs": (training.get("refit") or {}).get("epochs"),
            "warm": bool(started.get("warm")), "start": started.get("reason", "warm")}


def averages(steps: List[Dict[str, object]]) -> Dict[str, object]:
    """Warm against cold over the steps where a warm start could happen (t >= 2): the ratio of
    mean wall times and the relative change in mean NDCG@10 and Recall@10."""
    later = [s for s in steps if s["step"] >= 2]
    if not later:
        return {}
    out: Dict[str, object] = {"steps": len(later)}
    means = {track: {key: float(np.mean([s[track][key] for s in later]))
                     for key in ("seconds", f"ndcg@{K}", f"recall@{K}")} for track in (WARM, COLD)}
    out["mean"] = means
    out["wall_ratio"] = means[WARM]["seconds"] / means[COLD]["seconds"]
    for key in (f"ndcg@{K}", f"recall@{K}"):
        out[f"{key}_change"] = means[WARM][key] / means[COLD][key] - 1 if means[COLD][key] else 0.0
    out["warm_steps"] = sum(bool(s[WARM]["warm"]) for s in later)
    return out


def table(steps: List[Dict[str, object]], means: Dict[str, object]) -> str:
    """The steps and the averages, warm beside cold."""
    head = (f"{'step':>4} {'window':>10} {'wall warm':>10} {'wall cold':>10} {'ratio':>6} "
            f"{'epochs w/c':>11} {f'NDCG@{K} w':>10} {f'NDCG@{K} c':>10} {f'R@{K} w':>8} {f'R@{K} c':>8}"
            f" {'users':>6}  start")
    lines = [head]
    for s in steps:
        w, c = s[WARM], s[COLD]
        start = "warm" if w["warm"] else f"cold: {w['start']}"
        lines.append(
            f"{s['step']:>4} {s['window']:>10} {w['seconds']:>9.0f}s {c['seconds']:>9.0f}s "
            f"{w['seconds'] / c['seconds']:>6.2f} {str(w['epochs_run']) + '/' + str(c['epochs_run']):>11} "
            f"{w[f'ndcg@{K}']:>10.4f} {c[f'ndcg@{K}']:>10.4f} {w[f'recall@{K}']:>8.4f} "
            f"{c[f'recall@{K}']:>8.4f} {s['users']:>6}  {start}")
    if means:
        lines.append(
            f"mean over steps 2..: wall warm / cold {means['wall_ratio']:.2f} "
            f"({means['mean'][WARM]['seconds']:.0f} s vs {means['mean'][COLD]['seconds']:.0f} s); "
            f"NDCG@{K} {means[f'ndcg@{K}_change']:+.1%}, Recall@{K} {means[f'recall@{K}_change']:+.1%} "
            f"warm vs cold; {means['warm_steps']} of {means['steps']} steps started warm")
    return "\n".join(lines)


def components_table(steps: List[Dict[str, object]]) -> str:
    """Each component's mean seconds over the steps a warm start could happen (t >= 2), warm
    beside cold, and the difference; components in the cold runs' order of cost."""
    later = [s for s in steps if s["step"] >= 2]
    names = sorted({name for s in later for track in (WARM, COLD) for name in s[track].get("components", {})})
    if not names:
        return ""
    mean = {track: {n: float(np.mean([s[track].get("components", {}).get(n, 0.0) for s in later]))
                    for n in names} for track in (WARM, COLD)}
    lines = [f"{'component':<24} {'warm':>8} {'cold':>8} {'warm - cold':>12}"]
    for n in sorted(names, key=lambda n: -mean[COLD][n]):
        lines.append(f"{n:<24} {mean[WARM][n]:>7.1f}s {mean[COLD][n]:>7.1f}s "
                     f"{mean[WARM][n] - mean[COLD][n]:>+11.1f}s")
    total = {track: sum(mean[track].values()) for track in (WARM, COLD)}
    lines.append(f"{'all components':<24} {total[WARM]:>7.1f}s {total[COLD]:>7.1f}s "
                 f"{total[WARM] - total[COLD]:>+11.1f}s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="a data folder (default: the embedded data)")
    parser.add_argument("--spans", type=int, default=4, help="spans to cut the data into (>= 3)")
    parser.add_argument("--output", default="bench/results/continuous")
    parser.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                        help="a further flag of every recsys run (repeatable), e.g. --run-arg=--epochs=5")
    args = parser.parse_args(argv)
    if args.spans < 3:
        parser.error("--spans must be >= 3: two steps at least, the second one warm")
    from models.data import readers, synthetic
    from models.data.config import DataConfig

    work = os.path.abspath(args.output)
    os.makedirs(work, exist_ok=True)
    data = args.data
    if data is None:
        d = DataConfig()
        data = synthetic.write_canonical(os.path.join(work, "default-data"), num_users=d.synthetic_users,
                                         num_items=d.synthetic_items,
                                         num_interactions=d.synthetic_interactions, seed=d.synthetic_seed)
    dataset = readers.read_dataset(data)
    from models import features

    span_of = cut(dataset.interactions[features.TIMESTAMP], args.spans)
    spans = write_spans(dataset, args.spans, os.path.join(work, "spans"))
    steps = []
    for t in range(1, args.spans):
        root = window_root(spans, t, work)
        future, _ = next_span(dataset, span_of, t)
        step = {"step": t, "window": f"1..{t}", "users": len(future)}
        for track in (WARM, COLD):
            done = run(root, os.path.join(work, track), track == COLD, args.run_arg)
            figures = score(os.path.join(work, track, "serving"), future, len(dataset.items))
            step[track] = {"seconds": done["seconds"], "pushed": bool(done["summary"].get("pushed")),
                           **_epochs(done["summary"]), f"ndcg@{K}": figures[f"ndcg@{K}"],
                           f"recall@{K}": figures[f"recall@{K}"],
                           "components": {c["component"]: c["seconds"]
                                          for c in done["summary"].get("components", [])}}
            print(f"step {t} {track}: {step[track]}", flush=True)
        steps.append(step)
    means = averages(steps)
    report = {"data": args.data or "the embedded default data", "spans": args.spans,
              "span_sizes": np.bincount(span_of, minlength=args.spans).tolist(), "steps": steps,
              "averages": means}
    with open(os.path.join(work, "continuous.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nContinuous training on {report['data']}: {args.spans} spans of "
          f"{report['span_sizes']} interactions; each step's served model scored on the next "
          f"span through serving_default (lists of {K}, seen items never hits)")
    print(table(steps, means))
    print("\nPer component over steps 2..: mean wall seconds (ML Metadata), warm beside cold")
    print(components_table(steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
