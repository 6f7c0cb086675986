"""Cost benchmark: the whole pipeline beside the stock TFX chain on the same interactions.

    make bench-cost [COST_SIZES=fixed,15k,100k,1m]
    python -m bench.cost --sizes fixed,15k,100k --output bench/results/cost

Sizes: ``fixed`` (100 interactions: what each step costs before it has data to work on, its
fixed cost), ``15k`` (300 users, 400 items, ``--epochs 3``, the tests' small shape), ``100k``
(the embedded default data and settings: what ``make run`` runs), ``1m`` (MovieLens-1M's
shape). For each size the data is generated once, then this project's run (``recsys run``'s
defaults) and the stock chain (bench/stock_chain.py: CsvExampleGen -> StatisticsGen ->
SchemaGen -> Transform -> Trainer with one epoch of a small Keras model -> Pusher, LocalDagRunner,
Beam in memory) each run in a fresh process, one after the other. Per step: wall seconds (ML
Metadata's execution times), CPU seconds and peak resident memory of the process and its Beam
workers (sampled every 0.2 s). The ratio that counts is this project's whole run over the stock
chain's, both measured in the same benchmark run on the same machine.

Writes ``cost.json`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import measure, scale

# size -> (interactions, users, items, seed, retrieval epochs or None for the default).
SIZES = {"fixed": (100, 5, 40, 5, 1), "15k": (15_000, 300, 400, 3, 3),
         "100k": (100_000, 943, 1682, 7, None), "1m": (1_000_209, 6040, 3706, 7, None)}


def _run_stock(data_dir: str, output: str) -> dict:
    """The stock chain once in this process with the sampler on."""
    from bench import stock_chain

    sampler = measure.Sampler()
    sampler.start()
    started = time.time()
    metadata_path = stock_chain.run(data_dir, os.path.join(output, "out"))
    wall = time.time() - started
    sampler.stop()
    return {"steps": measure.steps(metadata_path, started, sampler), "wall": wall,
            "peak_rss": max(rss for _, rss, _ in sampler.samples),
            "cpu_seconds": round(sampler.samples[-1][2] - sampler.samples[0][2], 1),
            "pushed": True, "failed": None}


def _fresh(kind: str, data_dir: str, output: str, epochs) -> dict:
    command = [sys.executable, "-m", "bench.cost", "--one", kind, "--data", data_dir,
               "--output", output]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not os.path.exists(os.path.join(output, "figures.json")):
        raise RuntimeError(f"the {kind} run on {data_dir} failed:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    with open(os.path.join(output, "figures.json")) as f:
        return json.load(f)


def measure_size(size: str, work: str) -> dict:
    """Generates the data of ``size``; runs this project's pipeline, then the stock chain."""
    from models.data import synthetic

    n, users, items, seed, epochs = SIZES[size]
    data_dir = os.path.join(work, f"data-{size}")
    synthetic.write_canonical(data_dir, num_users=users, num_items=items, num_interactions=n,
                              seed=seed)
    with open(os.path.join(data_dir, "interactions.csv")) as f:
        rows = sum(1 for _ in f) - 1
    ours = _fresh("ours", data_dir, os.path.join(work, f"ours-{size}"), epochs)
    stock = _fresh("stock", data_dir, os.path.join(work, f"stock-{size}"), None)
    return {"size": size, "interactions": rows, "users": users, "items": items, "epochs": epochs,
            "ours": ours, "stock": stock, "ratio": ours["wall"] / stock["wall"]}


def _rows(results: List[dict], kind: str) -> List[str]:
    names: List[str] = []
    for r in results:
        for step in r[kind]["steps"]:
            if step["component"] not in names:
                names.append(step["component"])
    by = [{s["component"]: s for s in r[kind]["steps"]} for r in results]
    lines = []
    for name in names:
        line = f"  {name:<24}"
        for steps in by:
            s = steps.get(name)
            line += (f"{s['seconds']:>10.1f}{s['cpu_seconds']:>8.1f}{s['peak_rss'] / 1e9:>6.2f}"
                     if s else f"{'-':>24}")
        lines.append(line)
    line = f"  {'whole run':<24}"
    for r in results:
        line += f"{r[kind]['wall']:>10.1f}{r[kind]['cpu_seconds']:>8.1f}{r[kind]['peak_rss'] / 1e9:>6.2f}"
    lines.append(line)
    return lines


def table(results: List[dict]) -> str:
    """Both runs per step at each size (wall s, CPU s, peak GB), and the whole runs' ratio."""
    head = f"  {'step':<24}" + "".join(f"{r['size'] + ' wall':>10}{'cpu':>8}{'GB':>6}" for r in results)
    lines = ["this project (recsys run)", head] + _rows(results, "ours")
    lines += ["", "stock TFX chain (same interactions)", head] + _rows(results, "stock")
    lines += ["", f"  {'wall ratio (ours / stock)':<24}" + "".join(f"{r['ratio']:>23.2f}x"
                                                             for r in results)]
    lines.append(f"  {'interactions':<24}" + "".join(f"{r['interactions']:>24,}" for r in results))
    lines.append(f"  {'pushed (ours)':<24}" + "".join(f"{str(r['ours']['pushed']):>24}"
                                                      for r in results))
    return "\n".join(lines)


def fixed_costs(result: dict) -> Dict[str, float]:
    """Each step's seconds on the ``fixed`` size (100 interactions)."""
    return {s["component"]: s["seconds"] for s in result["ours"]["steps"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="fixed,15k,100k,1m",
                        help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--output", default="bench/results/cost")
    parser.add_argument("--one", choices=("ours", "stock"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a single run in this (fresh) process
        os.makedirs(args.output, exist_ok=True)
        if args.one == "ours":
            figures = scale.run_one(args.data, args.output, args.epochs, "DirectRunner", ())
        else:
            figures = _run_stock(args.data, args.output)
        with open(os.path.join(args.output, "figures.json"), "w") as f:
            json.dump(figures, f, indent=1)
        return 0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; known: {list(SIZES)}")
    os.makedirs(args.output, exist_ok=True)
    results = []
    for size in sizes:
        results.append(measure_size(size, args.output))
        r = results[-1]
        print(f"{size}: {r['interactions']:,} interactions: this project {r['ours']['wall']:.1f} s, "
              f"stock chain {r['stock']['wall']:.1f} s ({r['ratio']:.2f}x)", flush=True)
    print(f"\nPer step: wall seconds, CPU seconds (process and Beam workers), peak resident GB; "
          f"{os.cpu_count()} cores")
    print(table(results))
    with open(os.path.join(args.output, "cost.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
