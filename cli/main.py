"""The ``recsys`` command line (also ``python -m cli``).

  recsys run [--data FOLDER] [--output-dir DIR] [--serving-dir DIR] [--top-k K] [--epochs N] ...
  recsys compile [--output kubeflow/pipeline.yaml] [--image IMAGE] [--data gs://...]
  recsys recommend --user ID [--serving-dir DIR | --server HOST:PORT [--protocol rest|grpc]]
  recsys rollback [--serving-dir DIR] [--to VERSION]
  recsys report [--output-dir DIR] [--open]
  recsys submit --host URL [--package kubeflow/pipeline.yaml] [--experiment NAME] [--param K=V ...]
               [--schedule CRON [--paused]]
  recsys schedules list|pause|resume|delete [ID] --host URL
  recsys status RUN_ID --host URL [--follow]
  recsys download ml-100k|ml-1m|ml-latest-small|ml-25m|ml-32m [--dest DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import List, Optional

from models.data import download
from pipeline.config import CANDIDATES_PER_ITEM, PipelineConfig
from recommender.config import base_of

# Configuration fields the flags of `recsys run` set: errors name the flag too.
FLAGS = {"top_k": "--top-k", "index.candidates": "--candidates", "retrieval.epochs": "--epochs",
         "data.eval_fraction": "--eval-fraction", "data.spans": "--spans",
         "data.span_pattern": "--span-pattern",
         "data.max_bad_row_fraction": "--max-bad-rows-fraction",
         "index.flavour": "--index-flavour", "index.min_recall": "--index-min-recall",
         "ranking.loss": "--ranking-loss", "rerank.diversity": "--diversity",
         "rerank.freshness_boost": "--freshness-boost",
         "rerank.dislike_similarity": "--dislike-similarity",
         "evaluation.min_lift_over_popularity": "--min-lift"}


def _config(args: argparse.Namespace) -> PipelineConfig:
    """Flags override the typed defaults; nothing else does."""
    config = PipelineConfig()
    data = dataclasses.replace(config.data, data_dir=args.data,
                               max_bad_row_fraction=args.max_bad_rows_fraction,
                               eval_fraction=args.eval_fraction, spans=args.spans,
                               span_pattern=args.span_pattern, drift_gate=not args.accept_drift,
                               request_log=args.request_log)
    retrieval = config.retrieval
    if args.epochs is not None:
        retrieval = dataclasses.replace(retrieval, epochs=args.epochs)
    if args.no_refit:
        retrieval = dataclasses.replace(retrieval, refit=False)
    if args.cold:
        retrieval = dataclasses.replace(retrieval, warm_start=False)
    index = config.index
    if args.index_flavour:
        index = dataclasses.replace(index, flavour=args.index_flavour)
    if args.index_min_recall is not None:
        index = dataclasses.replace(index, min_recall=args.index_min_recall)
    evaluation = dataclasses.replace(config.evaluation, min_lift_over_popularity=args.min_lift)
    ranking = config.ranking
    if args.ranking_loss:
        ranking = dataclasses.replace(ranking, loss=args.ranking_loss)
    rerank = dataclasses.replace(config.rerank, **{
        key: value for key, value in (("diversity", args.diversity),
                                      ("freshness_boost", args.freshness_boost),
                                      ("dislike_similarity", args.dislike_similarity))
        if value is not None})
    config = dataclasses.replace(config, data=data, retrieval=retrieval, index=index,
                                 ranking=ranking, rerank=rerank, evaluation=evaluation,
                                 serving_dir=args.serving_dir,
                                 beam_runner=args.beam_runner, beam_args=tuple(args.beam_arg),
                                 enable_cache=bool(getattr(args, "cache", False)))
    return config.with_lists(args.top_k, args.candidates)


# Every flag's default, and every default a help text quotes, comes from the dataclasses.
DEFAULTS = PipelineConfig()


def _spans(text: str) -> int:
    """--spans: 'all' (0), 'latest' (1) or a positive number of spans."""
    named = {"all": 0, "latest": 1}
    if text in named:
        return named[text]
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: expected all, latest or a number of spans >= 1")


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument("--beam-runner", default=d.beam_runner,
                   help="Beam runner of the data steps: DirectRunner (default: every core), "
                        "PortableRunner (Flink, Spark or a Beam job service; give --beam-arg="
                        "--job_endpoint=HOST:PORT and an environment), DataflowRunner, ...")
    p.add_argument("--beam-arg", action="append", default=list(d.beam_args), metavar="ARG",
                   help="Beam option of every Beam-using component (repeatable), e.g. "
                        "--beam-arg=--direct_num_workers=4 or --beam-arg=--job_endpoint=localhost:8099")
    p.add_argument("--data", default=d.data.data_dir,
                   help="data folder (interactions.csv, or a MovieLens 100K/1M download); "
                        "default: the embedded synthetic dataset")
    p.add_argument("--spans", type=_spans, default=d.data.spans, metavar="all|latest|N",
                   help="a data folder of dated span folders (span-20261201/, ...): read all of "
                        "them (default), the latest one, or the latest N, oldest first")
    p.add_argument("--span-pattern", default=d.data.span_pattern,
                   help="the span folders' names, in TFX's span syntax: {SPAN} or "
                        f"{{YYYY}}{{MM}}{{DD}} (default {d.data.span_pattern})")
    p.add_argument("--serving-dir", default=d.serving_dir,
                   help="the model is pushed to SERVING_DIR/recommender/<version>/")
    p.add_argument("--top-k", type=int, default=d.top_k, help="length of the recommended list")
    p.add_argument("--candidates", type=int, default=None,
                   help=f"items retrieval hands the ranker per request (default: {d.index.candidates}, "
                        f"and at least {CANDIDATES_PER_ITEM} x --top-k, so the ranker chooses the list)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"retrieval training epochs (default {d.retrieval.epochs}; 0: an untrained "
                        "model, which the gates refuse)")
    p.add_argument("--no-refit", action="store_true",
                   help="deploy the models trained on the train split only (default: after the "
                        "held-out checks, retrieval and ranking learn again from every interaction)")
    p.add_argument("--accept-drift", action="store_true",
                   help="report drift from the served model's data, and serving skew, without "
                        "stopping the run (default: a distance beyond the schema's drift_comparator "
                        "or skew_comparator thresholds stops it)")
    p.add_argument("--request-log", default=d.data.request_log, metavar="PATH",
                   help="a file (or folder) of served requests, one TF Serving REST request body per "
                        "line (recsys recommend --request-log writes one): the features they carry "
                        "are compared with the training data's (serving skew); default: none")
    p.add_argument("--cold", action="store_true",
                   help="train from scratch even when a compatible model is served (default: the "
                        "retrieval model and then the ranker start from the served version's "
                        "weights, rows carried over by id)")
    p.add_argument("--eval-fraction", type=float, default=d.data.eval_fraction,
                   help="latest share of each user's interactions held out for evaluation "
                        f"(default {d.data.eval_fraction})")
    p.add_argument("--max-bad-rows-fraction", type=float, default=d.data.max_bad_row_fraction,
                   help="skip (and report) invalid rows up to this share of a file; "
                        f"default {d.data.max_bad_row_fraction}: any invalid row stops the run")
    p.add_argument("--index-flavour", choices=("auto", "exact", "scann"), default=None,
                   help="exact (stock TF Serving), scann (TF Serving with ScaNN's ops) or auto: "
                        f"exact below {d.index.brute_force_below:,} items (default {d.index.flavour})")
    p.add_argument("--index-min-recall", type=float, default=None,
                   help="push only if the index's recall against exact search reaches this "
                        f"(default {d.index.min_recall})")
    p.add_argument("--ranking-loss", choices=("pointwise", "listwise"), default=None,
                   help=f"the ranking model's loss (default {d.ranking.loss})")
    p.add_argument("--diversity", type=float, default=None,
                   help="re-ranking: MMR trade-off in [0, 1) on item embeddings "
                        f"(default {d.rerank.diversity}: off)")
    p.add_argument("--freshness-boost", type=float, default=None,
                   help="re-ranking: boost of recently released items "
                        f"(default {d.rerank.freshness_boost}: off)")
    p.add_argument("--dislike-similarity", type=float, default=None,
                   help="re-ranking: demote items this similar (cosine) to one the user rated "
                        f"low (default {d.rerank.dislike_similarity}; 1: off)")
    p.add_argument("--min-lift", type=float, default=d.evaluation.min_lift_over_popularity,
                   help="push only if the model's recall is at least this multiple of popularity's "
                        f"(default {d.evaluation.min_lift_over_popularity})")


def _cmd_run(args) -> int:
    if not args.verbose:  # TensorFlow's C++ INFO/WARNING lines go nowhere else
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from local import runner as local_runner

    try:
        config = _config(args)
    except ValueError as e:  # a flag's value no dataclass field takes
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The run validates the configuration (once, when the pipeline is created).
    return local_runner.main(config, args.output_dir, flags=FLAGS, verbose=args.verbose)


def _cmd_compile(args) -> int:
    from kubeflow import runner

    try:
        tolerations = ([runner.parse_toleration(t) for t in args.gpu_toleration]
                       if args.gpu_toleration else runner.DEFAULT_TOLERATIONS)
        node_selector = runner.parse_labels(args.gpu_node_selector)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    output = args.output or ("kubeflow/pipeline.json" if args.target == "vertex"
                             else "kubeflow/pipeline.yaml")
    # Not given: the placeholders (gs://YOUR_BUCKET/...), which a run's parameters replace.
    serving_dir = args.serving_dir or runner.DEFAULT_SERVING_DIR
    try:
        path = runner.compile_pipeline(
            _config(argparse.Namespace(**{**vars(args), "serving_dir": serving_dir})), output,
            image=args.image, data_root=args.data or runner.DEFAULT_DATA_ROOT,
            pipeline_root=args.pipeline_root, gpus=args.gpus, target=args.target,
            node_selector=node_selector, tolerations=tolerations, beam_args=args.beam_arg,
            serving_dir=serving_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kind = ("Vertex AI PipelineJob" if args.target == "vertex"
            else "KFP v2 PipelineSpec + Kubernetes platform spec")
    print(f"Wrote {path} ({kind})")
    return 0


def _cmd_recommend(args) -> int:
    from recommender import client, remote, versions

    history = [i for i in (args.history or "").split(",") if i]
    exclude = [i for i in (args.exclude or "").split(",") if i]
    try:
        if args.server:
            source = f"TF Serving {args.protocol}://{args.server}, model '{args.model_name}'"
            server = remote.client(args.server, args.protocol, args.model_name,
                                   timeout=args.timeout)
            items = remote.recommend(server, args.user, history, args.age, args.gender,
                                     args.occupation, exclude, args.k, args.request_log)
        else:
            source = client.latest_version(base_of(args.serving_dir))
            items = client.recommend(source, args.user, history, args.age, args.gender,
                                     args.occupation, exclude, args.k, args.request_log)
    except (FileNotFoundError, OSError, ValueError, remote.ServingError,
            versions.ServingDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if getattr(items, "unknown_items", 0):
        print(f"note: {items.unknown_items} of the item ids in --history/--exclude are not in the "
              f"model's catalogue and were ignored", file=sys.stderr)
    print(f"Recommendations for user {args.user} (model {source}):")
    for rank, (item_id, title, score) in enumerate(items, 1):
        print(f"{rank:>3}. {item_id:<10} {title:<60} {score:8.4f}")
    return 0


def _cmd_rollback(args) -> int:
    from recommender import push_lock, versions

    base = base_of(args.serving_dir)
    try:
        before = versions.versions(base)
        path = versions.rollback(base, args.to)
    except (ValueError, versions.ServingDirError, push_lock.PushBusyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = args.to if args.to is not None else before[-2]
    print(f"Version {source} is served again, as {path} (versions were {before}).")
    return 0


def _cmd_report(args) -> int:
    from presentation import report

    path = report.latest(args.output_dir)
    if path is None:
        print(f"error: no report under {report.reports_dir(args.output_dir)}; each recsys run "
              f"--output-dir {args.output_dir} writes one", file=sys.stderr)
        return 2
    print(path)
    if args.open:
        import webbrowser

        if not webbrowser.open(f"file://{os.path.abspath(path)}"):
            print("no browser to open it here; open the path above", file=sys.stderr)
    return 0


def _token(args) -> Optional[str]:
    if args.token_file:
        with open(args.token_file) as f:
            return f.read().strip()
    return None


def _cmd_submit(args) -> int:
    from kubeflow import runner, schedules, submit

    try:
        if not os.path.isfile(args.package):
            raise FileNotFoundError(f"{args.package} does not exist: write it with recsys compile "
                                    f"first")
        params = submit.parse_params(args.param,
                                     submit.parameter_defaults(runner.load(args.package)[0]))
        if args.schedule is not None:
            schedules.kfp_cron(args.schedule)  # refused before anything is sent
            made = schedules.create(args.package, args.host, args.schedule,
                                    args.run_name or f"{args.experiment} on {args.schedule}",
                                    args.experiment, params, args.pipeline_root, _token(args),
                                    paused=args.paused)
        else:
            if args.paused:
                raise ValueError("--paused needs --schedule")
            run_id = submit.submit(args.package, args.host, args.experiment, params,
                                   args.pipeline_root, args.run_name, _token(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.schedule is not None:
        print(f"Scheduled {made['id']} ({made['name']}): {made['status']}, cron "
              f"{made['schedule']!r} (KFP's seconds-first form), at most one run at a time, no "
              f"catch-up")
        print(f"See it: recsys schedules list --host {args.host}")
        return 0
    print(f"Submitted run {run_id}: {submit.run_url(args.host, run_id)}")
    print(f"Follow it: recsys status {run_id} --host {args.host} --follow")
    return 0


def _cmd_schedules(args) -> int:
    from kubeflow import schedules

    token = _token(args)
    if args.action == "list":
        listed = schedules.list_all(args.host, args.experiment, token)
        for made in listed:
            print(f"  {made['id']:<38} {str(made['status']).lower():<9} {made['schedule']!s:<18} "
                  f"{made['name']}")
        print(f"{len(listed)} recurring run(s)")
        return 0
    if not args.id:
        print(f"error: recsys schedules {args.action} needs the recurring run's id (see recsys "
              f"schedules list)", file=sys.stderr)
        return 2
    {"pause": schedules.pause, "resume": schedules.resume, "delete": schedules.delete}[args.action](
        args.host, args.id, token)
    print(f"{dict(pause='Paused', resume='Resumed', delete='Deleted')[args.action]} {args.id}")
    return 0


def _cmd_status(args) -> int:
    from kubeflow import submit

    if args.follow:
        result = submit.follow(args.host, args.run_id, _token(args), interval=args.interval)
    else:
        result = submit.status(args.host, args.run_id, _token(args))
        for task in result["tasks"]:
            print(f"  {task['task']:<24} {str(task['state']).lower()}")
    print(f"Run {result['run_id']} ({result['name']}): {result['state']}"
          + (f": {result['error']}" if result.get("error") else ""))
    return 0 if result["state"] == "SUCCEEDED" else 1


def _cmd_download(args) -> int:
    folder = download.download(args.dataset, args.dest, base_url=args.base_url)
    print(f"Downloaded to {folder}; run: recsys run --data {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline locally (Beam DirectRunner)")
    _add_config_flags(run)
    run.add_argument("--output-dir", default="tfx_output", help="artifacts and ML Metadata")
    run.add_argument("--verbose", action="store_true",
                     help="stream the whole TensorFlow/Beam/TFX log (it is always written to "
                          "OUTPUT_DIR/logs/run-<id>.log)")
    run.add_argument("--cache", action="store_true",
                     help="reuse the outputs of components whose inputs and settings are unchanged "
                          "since an earlier run in --output-dir (e.g. a re-ranking rule change "
                          "reassembles, evaluates and pushes without retraining)")
    run.set_defaults(func=_cmd_run)

    comp = sub.add_parser("compile", help="compile the Kubeflow Pipelines v2 spec")
    _add_config_flags(comp)
    comp.add_argument("--target", choices=("kfp", "vertex"), default="kfp",
                      help="kfp: PipelineSpec YAML for open-source Kubeflow Pipelines v2 (with the "
                           "Kubernetes platform spec); vertex: PipelineJob JSON for Vertex AI")
    comp.add_argument("--output", default=None,
                      help="default kubeflow/pipeline.yaml (kfp) or kubeflow/pipeline.json (vertex)")
    comp.add_argument("--gpus", type=int, default=1, help="GPUs per trainer (0: none)")
    comp.add_argument("--gpu-node-selector", action="append", default=[], metavar="KEY=VALUE",
                      help="node label of the GPU node pool the trainers run on (repeatable), e.g. "
                           "cloud.google.com/gke-accelerator=nvidia-l4")
    comp.add_argument("--gpu-toleration", action="append", default=[], metavar="KEY[=VALUE]:EFFECT",
                      help="taint of the GPU nodes the trainers tolerate (repeatable; default "
                           "nvidia.com/gpu:NoSchedule)")
    comp.add_argument("--image", default=None, help="container image with this package installed")
    comp.add_argument("--pipeline-root", default=None, help="e.g. gs://bucket/tfx-recommender")
    # --data, --serving-dir and --pipeline-root must be object store URIs (the pods read them);
    # not given, they are placeholders that each run's parameters replace.
    comp.set_defaults(func=_cmd_compile, serving_dir=None)

    rec = sub.add_parser("recommend", help="print a user's list from the newest pushed model")
    rec.add_argument("--user", required=True)
    rec.add_argument("--serving-dir", default=DEFAULTS.serving_dir,
                     help="load the newest pushed model from here (without --server)")
    rec.add_argument("--server", default=None,
                     help="HOST:PORT of a running TF Serving instead (8501 REST, 8500 gRPC)")
    rec.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    rec.add_argument("--model-name", default="recommender", help="TF Serving's model name")
    rec.add_argument("--timeout", type=float, default=5.0, help="seconds per server call")
    rec.add_argument("--history", default="",
                     help="comma-separated item ids the user interacted with recently, oldest first "
                          "(personalises for users the model has never seen)")
    rec.add_argument("--exclude", default="", help="comma-separated item ids never to return")
    rec.add_argument("--k", type=int, default=None,
                     help="list length (default: the model's; at most its max_k)")
    rec.add_argument("--age", type=int, default=0, help="request-time demographics (0/'': unknown)")
    rec.add_argument("--gender", default="")
    rec.add_argument("--occupation", default="")
    rec.add_argument("--request-log", default=None, metavar="FILE",
                     help="append the request sent to this log (one TF Serving request body per "
                          "line), which recsys run --request-log compares with the training data")
    rec.set_defaults(func=_cmd_recommend)

    back = sub.add_parser("rollback", help="serve an earlier pushed version again (republished "
                                           "as the newest, so TF Serving picks it up)")
    back.add_argument("--serving-dir", default=DEFAULTS.serving_dir)
    back.add_argument("--to", type=int, default=None,
                      help="the version to serve (default: the one before the newest)")
    back.set_defaults(func=_cmd_rollback)

    rep = sub.add_parser("report", help="print the path of the newest run report (HTML)")
    rep.add_argument("--output-dir", default="tfx_output", help="the run's --output-dir")
    rep.add_argument("--open", action="store_true", help="open it in the default browser")
    rep.set_defaults(func=_cmd_report)

    sbm = sub.add_parser("submit", help="submit the compiled pipeline to a Kubeflow Pipelines v2 "
                                        "endpoint and print the run's URL")
    sbm.add_argument("--host", required=True, help="the KFP API endpoint, e.g. http://localhost:8080")
    sbm.add_argument("--package", default="kubeflow/pipeline.yaml", help="what recsys compile wrote")
    sbm.add_argument("--experiment", default="tfx-recommender")
    sbm.add_argument("--run-name", default=None)
    sbm.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a run parameter (repeatable): data_root=gs://..., top_k=20, or one field "
                          "of a section: retrieval.epochs=5, evaluation.min_lift_over_popularity=1.1")
    sbm.add_argument("--pipeline-root", default=None, help="overrides the compiled pipeline root")
    sbm.add_argument("--token-file", default=None,
                     help="file holding a bearer token (default: KF_PIPELINES_TOKEN or kfp's own "
                          "credentials)")
    sbm.add_argument("--schedule", default=None, metavar="CRON",
                     help="create a recurring run instead: a crontab line ('0 3 * * *': 03:00 every "
                          "day; sent to KFP with seconds in front), KFP's 6 fields, or @daily / "
                          "@every 24h; at most one run at a time, no catch-up")
    sbm.add_argument("--paused", action="store_true", help="with --schedule: create it paused")
    sbm.set_defaults(func=_cmd_submit)

    sch = sub.add_parser("schedules", help="the recurring runs on a Kubeflow Pipelines v2 endpoint")
    sch.add_argument("action", choices=("list", "pause", "resume", "delete"))
    sch.add_argument("id", nargs="?", default=None, help="the recurring run (not for list)")
    sch.add_argument("--host", required=True)
    sch.add_argument("--experiment", default=None, help="list: only this experiment's")
    sch.add_argument("--token-file", default=None)
    sch.set_defaults(func=_cmd_schedules)

    st = sub.add_parser("status", help="the state of a submitted run and of its tasks")
    st.add_argument("run_id")
    st.add_argument("--host", required=True)
    st.add_argument("--follow", action="store_true", help="print changes until the run ends")
    st.add_argument("--interval", type=float, default=10.0, help="seconds between polls")
    st.add_argument("--token-file", default=None)
    st.set_defaults(func=_cmd_status)

    dl = sub.add_parser("download", help="download MovieLens from GroupLens (needs internet)")
    dl.add_argument("dataset", choices=download.DATASETS)
    dl.add_argument("--dest", default="data")
    dl.add_argument("--base-url", default=download.BASE_URL)
    dl.set_defaults(func=_cmd_download)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Warnings only on the console; a run sends the whole log to its file (presentation/run_log.py).
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
