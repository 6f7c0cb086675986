"""The stock Evaluator's cost: TFMA's metrics per request against the same metrics per candidate.

The stock Evaluator (TFX's executor, TFMA) is replayed in a fresh process per figure on one
run's artifacts (its CandidateExamples and holdout recommender), in process as a local run
runs it, with two configurations alternated:

* ``per request`` (the pipeline's, models/evaluation/tfma_gate.py): every metric under the
  request as TFMA's ``query_key``, so TFMA groups each request's candidates into one element
  and AUC flattens them.
* ``per candidate`` (the baseline: how TFMA is usually configured, and this project's
  configuration before): AUC and the example count per (request, candidate) example, NDCG and
  MinLabelPosition per request.

Each once with the holdout model alone (a first run) and once with a served model as the
baseline (every later run; here the same model, which costs what another one would). The
figures both configurations report must agree: the benchmark fails when one differs by more
than ``TOLERANCE``. They are not always equal to the last digit: TFMA hands the model batches
of examples whose boundaries differ between the two pipelines, and the recommender's scores of
a few near-tied items move with the batch (on one default-data run, 3 of 15,000 examples by up to
three places in the list when the batch was cut every 37 examples), which moves AUC by up to
1e-4 in a small slice.
Run: ``make bench-evaluator`` (``RUN_DIR=``: an earlier ``recsys run --output-dir``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from bench.serving import pipeline_run, write_results

PER_REQUEST, PER_CANDIDATE = "per request", "per candidate"
TOLERANCE = 1e-3


def per_candidate_config(config):
    """The pipeline's EvalConfig with AUC and the example count moved out of the request's
    ``query_key`` (TFMA then evaluates them per example)."""
    import tensorflow_model_analysis as tfma

    out = tfma.EvalConfig()
    out.CopyFrom(config)
    del out.metrics_specs[:]
    moved = []
    for spec in config.metrics_specs:
        kept = [m for m in spec.metrics if m.class_name not in ("AUC", "ExampleCount")]
        moved += [m for m in spec.metrics if m.class_name in ("AUC", "ExampleCount")]
        if kept:
            copy = tfma.MetricsSpec()
            copy.CopyFrom(spec)
            del copy.metrics[:]
            copy.metrics.extend(kept)
            out.metrics_specs.append(copy)
    out.metrics_specs.append(tfma.MetricsSpec(metrics=moved))
    return out


def artifacts_of(run_dir: str) -> Dict[str, str]:
    """The newest CandidateExamples and holdout recommender under a run's output directory."""
    def newest(pattern):
        found = sorted(glob.glob(os.path.join(run_dir, "**", pattern), recursive=True),
                       key=lambda p: int(os.path.basename(p)))
        if not found:
            raise FileNotFoundError(f"no {pattern} under {run_dir}; give a `recsys run "
                                    f"--output-dir` folder")
        return found[-1]
    return {"examples": newest("CandidateExamples/request_examples/[0-9]*"),
            "model": newest("RecommenderAssembler/holdout_model/[0-9]*")}


def replay(examples: str, model: str, per_candidate: bool, baseline: bool, out: str) -> Dict:
    """One run of the stock Evaluator's executor (this process); its wall seconds and figures."""
    from tfx.components.evaluator import executor
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts
    from tfx.utils import json_utils, proto_utils

    from models import features
    from models.evaluation import tfma_gate
    from models.evaluation.config import EvalConfig
    from pipeline.config import PipelineConfig

    def artifact(cls, uri, splits=None):
        a = cls()
        a.uri = uri
        if splits:
            a.split_names = json.dumps(splits)
        return a

    config = tfma_gate.eval_config(EvalConfig())
    if per_candidate:
        config = per_candidate_config(config)
    inputs = {"examples": [artifact(standard_artifacts.Examples, examples, [features.EVAL])],
              "model": [artifact(standard_artifacts.Model, model)]}
    if baseline:
        inputs["baseline_model"] = [artifact(standard_artifacts.Model, model)]
    for name in ("evaluation", "blessing"):
        os.makedirs(os.path.join(out, name))
    outputs = {"evaluation": [artifact(standard_artifacts.ModelEvaluation, os.path.join(out, "evaluation"))],
               "blessing": [artifact(standard_artifacts.ModelBlessing, os.path.join(out, "blessing"))]}
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=list(PipelineConfig().for_input(0).beam_pipeline_args),
        tmp_dir=os.path.join(out, "tmp"), unique_id="1")
    start = time.time()
    executor.Executor(context).Do(inputs, outputs, {
        "eval_config": proto_utils.proto_to_json(config),
        "example_splits": json_utils.dumps([features.EVAL])})
    seconds = time.time() - start
    return {"seconds": seconds, "result": tfma_gate.read(os.path.join(out, "evaluation"))}


def measure(artifacts: Dict[str, str], repeats: int, work: str) -> List[Dict]:
    """Every (configuration, baseline) pair ``repeats`` times, alternated, each in a fresh process."""
    rows = []
    for repeat in range(repeats):
        for baseline in (False, True):
            for name in (PER_CANDIDATE, PER_REQUEST):
                out = os.path.join(work, f"{repeat}-{int(baseline)}-{name.replace(' ', '-')}")
                done = subprocess.run(
                    [sys.executable, "-m", "bench.evaluator", "--one", out,
                     "--examples", artifacts["examples"], "--model", artifacts["model"]]
                    + (["--per-candidate"] if name == PER_CANDIDATE else [])
                    + (["--baseline"] if baseline else []),
                    capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"the Evaluator replay failed:\n{done.stderr[-3000:]}")
                figures = json.load(open(os.path.join(out, "figures.json")))
                rows.append({"config": name, "baseline": baseline, "repeat": repeat, **figures})
    return rows


def differences(rows: List[Dict]) -> Tuple[float, str]:
    """The largest difference between the figures both configurations report (example counts
    aside: per request they count requests), and where it is."""
    worst, where = 0.0, ""
    for baseline in (False, True):
        a, b = (next(r["result"]["slices"] for r in rows
                     if r["config"] == name and r["baseline"] == baseline)
                for name in (PER_CANDIDATE, PER_REQUEST))
        for slice_name, values in b.items():
            for metric, models in values.items():
                if metric == "example_count":
                    continue
                for model, value in models.items():
                    gap = abs(value - a[slice_name][metric][model])
                    if gap > worst:
                        worst, where = gap, f"{metric} ({model}) on {slice_name}"
    return worst, where


def render(rows: List[Dict], worst: Tuple[float, str]) -> str:
    lines = [f"{'models':<28} {'per candidate':>16} {'per request':>16} {'ratio':>7}"]
    for baseline in (False, True):
        times = {name: [r["seconds"] for r in rows if r["config"] == name and r["baseline"] == baseline]
                 for name in (PER_CANDIDATE, PER_REQUEST)}
        mean = {name: sum(t) / len(t) for name, t in times.items()}
        lines.append(f"{'holdout + served baseline' if baseline else 'holdout alone':<28} "
                     f"{' / '.join(f'{t:.1f}' for t in times[PER_CANDIDATE]):>14} s "
                     f"{' / '.join(f'{t:.1f}' for t in times[PER_REQUEST]):>14} s "
                     f"{mean[PER_REQUEST] / mean[PER_CANDIDATE]:>6.2f}x")
    lines.append(f"largest difference between the figures both report: {worst[0]:.2e}"
                 + (f", {worst[1]}" if worst[0] else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="an earlier `recsys run --output-dir` to reuse; "
                                          "default: run the pipeline on the embedded data")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/results/evaluator")
    # One replay, in this process (the benchmark starts one process per figure).
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--examples", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--per-candidate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        figures = replay(args.examples, args.model, args.per_candidate, args.baseline, args.one)
        with open(os.path.join(args.one, "figures.json"), "w") as f:
            json.dump(figures, f)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-evaluator-") as work:
        run_dir = args.run_dir
        if not run_dir:
            run_dir = os.path.join(work, "run")
            pipeline_run(run_dir)
        rows = measure(artifacts_of(run_dir), args.repeats, os.path.join(work, "replays"))
    worst = differences(rows)
    write_results(args.out, "evaluator", [{k: v for k, v in r.items() if k != "result"}
                                          for r in rows], render(rows, worst))
    if worst[0] > TOLERANCE:
        print("the two configurations' figures differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
