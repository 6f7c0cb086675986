"""Scale benchmark: the whole pipeline at growing data sizes, each step's time and memory.

    make bench-scale [SIZES=100k,1m,10m] [ARGS="--epochs 2"]
    python -m bench.scale --sizes 100k,1m --output bench/results/scale

For each size, synthetic data of MovieLens shape (100k: ML-100K's 943 users and 1,682
items; 1m: ML-1M's 6,040 users and 3,706 items; 10m: ML-10M's 69,878 users and 10,677
items; other sizes keep ML-1M's interactions per user and per item) is generated, then
``recsys run`` runs in a fresh process on the configured Beam runner (default: the
DirectRunner, a worker process per core). Per component: wall time (ML Metadata's
execution times) and the peak resident memory of the run's process and its Beam worker
processes while the component ran (sampled every 0.2 s). The table puts the sizes side by
side with each step's growth ratio between consecutive sizes, against the data's ratio:
a step whose time grows faster than the data does not scale.

Writes ``scale.json`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import List, Sequence

from bench import measure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> (interactions, users, items): MovieLens shapes.
SHAPES = {"100k": (100_000, 943, 1682), "1m": (1_000_209, 6040, 3706), "10m": (10_000_054, 69_878, 10_677)}


def shape(size: str):
    """(interactions, users, items) of a size name: '100k', '1m', '10m' or a count like '30k'."""
    if size in SHAPES:
        return SHAPES[size]
    scale = {"k": 1_000, "m": 1_000_000}.get(size[-1].lower(), 1)
    n = int(float(size[:-1] if scale > 1 else size) * scale)
    # ML-1M's ratios: 165 interactions per user, 270 per item (at least 100 users and 200 items,
    # so that small sizes hold the interactions asked for).
    return n, max(100, n // 165), max(200, n // 270)


def run_one(data_dir: str, output: str, epochs, beam_runner: str, beam_args: Sequence[str]) -> dict:
    """Runs the pipeline once in this process with the sampler on; returns the figures."""
    import dataclasses

    from local import runner as local_runner
    from pipeline.config import DataConfig, PipelineConfig

    config = PipelineConfig(serving_dir=os.path.join(output, "serving"), beam_runner=beam_runner,
                            beam_args=tuple(beam_args), data=DataConfig(data_dir=data_dir))
    if epochs is not None:
        config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, epochs=epochs))
    config = config.with_lists(config.top_k)
    sampler = measure.Sampler()
    sampler.start()
    started = time.time()
    sys.argv = sys.argv[:1]  # TFX parses absl flags from sys.argv
    try:
        summary = local_runner.run(config, os.path.join(output, "out"))
        failed = None
    except local_runner.RunFailedError as e:
        summary, failed = e.summary, str(e)
    wall = time.time() - started
    sampler.stop()
    steps = [{"component": c["component"], "seconds": c["seconds"],
              "cpu_seconds": round(sampler.cpu(c["started"], c["ended"]), 2),
              "peak_rss": sampler.peak(c["started"], c["ended"])}
             for c in summary["components"]]
    return {"steps": steps, "wall": wall, "peak_rss": max(rss for _, rss, _ in sampler.samples),
            "cpu_seconds": round(sampler.samples[-1][2] - sampler.samples[0][2], 1),
            "pushed": bool(summary.get("pushed")), "failed": failed}


def measure_size(size: str, work: str, epochs, beam_runner: str, beam_args: Sequence[str]) -> dict:
    """Generates the data of ``size`` and runs the pipeline on it in a fresh process."""
    from models.data import synthetic

    n, users, items = shape(size)
    data_dir = os.path.join(work, f"data-{size}")
    started = time.time()
    synthetic.write_canonical(data_dir, num_users=users, num_items=items, num_interactions=n, seed=7)
    generated = time.time() - started
    out = os.path.join(work, f"run-{size}")
    command = [sys.executable, "-m", "bench.scale", "--one", data_dir, "--output", out,
               "--beam-runner", beam_runner] + [f"--beam-arg={a}" for a in beam_args]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    started = time.time()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {size} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(os.path.join(out, "figures.json")) as f:
        figures = json.load(f)
    with open(os.path.join(data_dir, "interactions.csv")) as f:
        rows = sum(1 for _ in f) - 1
    figures.update(size=size, interactions=rows, users=users, items=items,
                   generate_seconds=round(generated, 1), process_seconds=round(time.time() - started, 1))
    return figures


def table(results: List[dict]) -> str:
    """Seconds and peak memory per component, side by side, with growth ratios."""
    names: List[str] = []
    for r in results:
        for step in r["steps"]:
            if step["component"] not in names:
                names.append(step["component"])
    by = [{s["component"]: s for s in r["steps"]} for r in results]
    head = f"{'component':<24}" + "".join(f"{r['size'] + ' s':>10}{'GB':>6}" for r in results)
    ratios = [(results[i - 1], results[i]) for i in range(1, len(results))]
    head += "".join(f"{'x' + a['size'] + '->' + b['size']:>14}" for a, b in ratios)
    lines = [head]
    for name in names:
        line = f"{name:<24}"
        for steps in by:
            step = steps.get(name)
            line += (f"{step['seconds']:>10.1f}{step['peak_rss'] / 1e9:>6.2f}" if step else f"{'-':>16}")
        for i in range(1, len(results)):
            a, b = by[i - 1].get(name), by[i].get(name)
            ok = a and b and a["seconds"] >= 1.0
            line += f"{b['seconds'] / a['seconds']:>13.1f}x" if ok else f"{'-':>14}"
        lines.append(line)
    line = f"{'whole run (wall)':<24}" + "".join(f"{r['wall']:>10.1f}{r['peak_rss'] / 1e9:>6.2f}"
                                                  for r in results)
    line += "".join(f"{b['wall'] / a['wall']:>13.1f}x" for a, b in ratios)
    lines.append(line)
    data = f"{'interactions':<24}" + "".join(f"{r['interactions']:>16,}" for r in results)
    data += "".join(f"{b['interactions'] / a['interactions']:>13.1f}x" for a, b in ratios)
    lines.append(data)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated: 100k, 1m, 10m, 30k, ...")
    parser.add_argument("--epochs", type=int, default=None, help="retrieval epochs (default: the config's)")
    parser.add_argument("--output", default="bench/results/scale")
    parser.add_argument("--beam-runner", default="DirectRunner")
    parser.add_argument("--beam-arg", action="append", default=[])
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a single run, in-process
    args = parser.parse_args(argv)
    if args.one:
        os.makedirs(args.output, exist_ok=True)
        figures = run_one(args.one, args.output, args.epochs, args.beam_runner, args.beam_arg)
        with open(os.path.join(args.output, "figures.json"), "w") as f:
            json.dump(figures, f, indent=1)
        return 0 if not figures["failed"] else 1
    os.makedirs(args.output, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        results.append(measure_size(size.strip(), args.output, args.epochs, args.beam_runner, args.beam_arg))
        print(f"{size}: {results[-1]['interactions']:,} interactions, run {results[-1]['wall']:.1f} s "
              f"(data generated in {results[-1]['generate_seconds']:.1f} s, not counted)", flush=True)
    print(f"\nPer component: seconds and peak resident memory (GB, the run's process and its Beam "
          f"workers), growth between sizes ({args.beam_runner}; {os.cpu_count()} cores)")
    print(table(results))
    with open(os.path.join(args.output, "scale.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
