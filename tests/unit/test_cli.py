"""Level 1: command-line flags land in the typed configuration."""

import dataclasses
import os
import signal
import time
from unittest import mock

import pytest

from cli import main as cli
from pipeline.config import IndexConfig, PipelineConfig, RankingConfig, RetrievalConfig
from tests.support import IN_PROCESS, write


def _config(*flags):
    return cli._config(cli.build_parser().parse_args(["run", *flags]))


def test_defaults_are_the_typed_defaults():
    config = _config()
    assert config.index == IndexConfig() and config.top_k == 10
    assert config.ranking == RankingConfig() and config.retrieval == RetrievalConfig()
    # Every field: the flags add nothing of their own to the dataclasses' defaults.
    assert config == PipelineConfig().with_lists(PipelineConfig().top_k)


def test_flags_take_their_defaults_from_the_dataclasses():
    defaults = dataclasses.replace(PipelineConfig(), top_k=7, serving_dir="elsewhere",
                                   data=dataclasses.replace(PipelineConfig().data, eval_fraction=0.3))
    with mock.patch.object(cli, "DEFAULTS", defaults):
        config = _config()
    assert (config.top_k, config.serving_dir, config.data.eval_fraction) == (7, "elsewhere", 0.3)


def test_index_flags_override_flavour_and_recall_threshold():
    config = _config("--index-flavour", "scann", "--index-min-recall", "0.99", "--top-k", "150")
    assert (config.index.flavour, config.index.min_recall) == ("scann", 0.99)
    # The ranker picks the list from twice as many retrieved candidates, and learns on lists
    # as long as those it ranks when served.
    assert config.index.candidates == 300
    assert config.rerank.max_k == 150 and 150 in config.evaluation.cutoffs
    config.validate()
    config = _config("--top-k", "150", "--candidates", "150", "--no-refit")
    assert config.index.candidates == 150
    assert config.retrieval.refit is False
    config.validate()


def test_beam_runner_and_its_options_come_from_flags():
    # Local default: the DirectRunner with a worker process per core, its workers' dependencies
    # named (this environment's), so that TFX builds no package for them.
    assert _config().beam_pipeline_args == ("--runner=DirectRunner",
                                            "--direct_running_mode=multi_processing",
                                            "--direct_num_workers=0", "--setup_file=./setup.py")
    # Options given win over the defaults; other runners get only what is given.
    assert _config("--beam-arg=--direct_num_workers=4").beam_pipeline_args == (
        "--runner=DirectRunner", "--direct_running_mode=multi_processing",
        "--setup_file=./setup.py", "--direct_num_workers=4")
    # Dependencies given are the user's; a runner given in the options is not the DirectRunner.
    assert _config("--beam-arg=--requirements_file=reqs.txt").beam_pipeline_args[-1:] == (
        "--requirements_file=reqs.txt",)
    assert "--setup_file=./setup.py" not in _config(
        "--beam-arg=--runner=DataflowRunner").beam_pipeline_args
    config = _config("--beam-runner", "PortableRunner", "--beam-arg=--job_endpoint=flink:8099",
                     "--beam-arg=--environment_type=EXTERNAL")
    assert config.beam_pipeline_args == ("--runner=PortableRunner", "--job_endpoint=flink:8099",
                                         "--environment_type=EXTERNAL")
    from pipeline import pipeline as pipeline_def

    pipe = pipeline_def.create_pipeline(config, "/data", "schemas")
    assert list(pipe.beam_pipeline_args) == list(config.beam_pipeline_args)


def test_a_local_beam_step_builds_no_package_for_its_workers():
    # TFX's Beam executors copy TFX's install and build an sdist of it (about 2 s and 49 MB of
    # /tmp a step) unless the options name the workers' dependencies; the DirectRunner's run in
    # this environment.
    from tfx.components.statistics_gen.executor import Executor
    from tfx.dsl.components.base import base_beam_executor

    for config in (_config(), _config().for_input(0)):
        step = Executor(base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=list(config.beam_pipeline_args)))
        assert not [arg for arg in step._beam_pipeline_args if arg.startswith("--extra_package")]


def test_a_local_run_chooses_the_direct_runner_mode_by_input_size():
    config = _config()
    # Below in_process_bytes every Beam step runs in the run's process; from it on, a worker
    # process per core (the compiled default).
    assert config.for_input(config.in_process_bytes - 1).beam_pipeline_args == (
        "--runner=DirectRunner", "--setup_file=./setup.py", "--direct_running_mode=in_memory",
        "--direct_num_workers=1")
    assert config.for_input(config.in_process_bytes).beam_pipeline_args == config.beam_pipeline_args
    # A mode or worker count the user gives, or another runner, is left as it is.
    given = _config("--beam-arg=--direct_num_workers=4")
    assert given.for_input(0).beam_pipeline_args == given.beam_pipeline_args
    portable = _config("--beam-runner", "PortableRunner", "--beam-arg=--job_endpoint=flink:8099")
    assert portable.for_input(0) is portable


def test_cache_flag_turns_on_tfx_caching():
    assert _config().enable_cache is False and _config("--cache").enable_cache is True


def test_a_bad_value_stops_the_run_before_anything_is_read_or_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--diversity", "1.0", "--output-dir", str(out)]) == 2
    assert "rerank.diversity [--diversity] must be in [0, 1)" in capsys.readouterr().out
    # Validated when the pipeline is created: no data generated, no metadata store opened.
    assert sorted(p.name for p in out.iterdir()) == ["logs", "run.lock"]


def test_options_that_cannot_work_are_refused_before_any_component_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--top-k", "5000", "--candidates", "5000", "--output-dir", str(out),
                     "--serving-dir", str(tmp_path / "serving")]) == 2
    assert ("the list length (--top-k 5000) is more than the 1682 items of the embedded dataset"
            in capsys.readouterr().out)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["run", "--output-dir", str(out), "--serving-dir", str(blocker / "sub")]) == 2
    message = capsys.readouterr().out
    assert f"the serving directory (--serving-dir) {blocker / 'sub'} cannot be written" in message
    assert sorted(p.name for p in out.iterdir()) == ["logs", "run.lock"]  # nothing generated or run


def _small(tmp_path):
    from pipeline.config import DataConfig, PipelineConfig

    return PipelineConfig(serving_dir=str(tmp_path / "serving"), beam_args=IN_PROCESS, data=DataConfig(
        synthetic_users=30, synthetic_items=40, synthetic_interactions=500))


def test_a_second_run_on_the_same_output_dir_is_refused(tmp_path, capsys):
    from local import runner as local_runner

    out = str(tmp_path / "out")
    with local_runner.locked(out):
        assert local_runner.main(_small(tmp_path), out) == 2
    assert "is in use by another recsys run (pid" in capsys.readouterr().out


def test_a_failed_run_prints_what_completed_and_one_line_why(tmp_path, capsys):
    from unittest import mock

    from tfx import v1 as tfx

    from local import runner as local_runner

    failure = RuntimeError("Traceback (most recent call last):\n  ...\nValueError: the boom")
    with mock.patch.object(tfx.orchestration.LocalDagRunner, "run_with_ir", side_effect=failure):
        assert local_runner.main(_small(tmp_path), str(tmp_path / "out")) == 1
    text = capsys.readouterr().out
    assert "Run summary" in text and "Not pushed: the run failed." in text
    assert "error: the run failed: RuntimeError: ValueError: the boom" in text
    assert "Traceback" not in text


def test_report_prints_the_newest_report_or_says_there_is_none(tmp_path, capsys):
    assert cli.main(["report", "--output-dir", str(tmp_path)]) == 2
    assert "no report under" in capsys.readouterr().err
    reports = tmp_path / "reports"
    reports.mkdir()
    for stamp in ("20261101-100000", "20261102-090000"):
        (reports / f"report-{stamp}.html").write_text("<html></html>")
    assert cli.main(["report", "--output-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(reports / "report-20261102-090000.html")


def test_epochs_zero_is_accepted_for_an_untrained_model():
    args = cli.build_parser().parse_args(["run", "--epochs", "0"])
    config = cli._config(args)
    config.validate()
    assert config.retrieval.epochs == 0


@pytest.mark.parametrize("files,message", [
    ({"ratings.csv": "a,b\n"}, "no known layout. Expected interactions.csv"),
    # MovieLens 100K without its u.user and u.item: the files found are named.
    ({"u.data": "1\t1\t5\t874965758\n"}, "found ['u.data']"),
    ({"interactions.csv": "user_id,item_id\n1,10\n"},
     "interactions.csv:1: missing required column(s) ['timestamp']"),
], ids=["unknown-layout", "missing-file", "missing-column"])
def test_the_pre_flight_check_names_the_problem_before_any_component_runs(tmp_path, capsys, files,
                                                                         message):
    data = tmp_path / "data"
    data.mkdir()
    for name, text in files.items():
        write(str(data), name, text)
    out = tmp_path / "out"
    assert cli.main(["run", "--data", str(data), "--output-dir", str(out),
                     "--serving-dir", str(tmp_path / "serving")]) == 2
    printed = capsys.readouterr()
    assert message in printed.out + printed.err, printed
    assert sorted(p.name for p in out.iterdir()) == ["logs", "run.lock"]  # nothing generated or run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_unwinds_the_run_as_interrupted_and_the_handlers_come_back(signum):
    """What `recsys run` does on SIGINT and SIGTERM (the end-to-end test sends SIGTERM to a
    training run): the signal becomes Interrupted, which no `except Exception` in a component
    swallows, and the previous handlers are restored after."""
    from local import runner as local_runner

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(local_runner.Interrupted) as caught:
        with local_runner.interruptible():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(10)
            except Exception:  # noqa: BLE001 (what a component's handler would do)
                pytest.fail("the interruption was caught as an Exception")
    assert caught.value.signum == signum
    assert str(caught.value) == f"interrupted by signal {int(signum)} ({signum.name})"
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_quality_benchmark_measures_every_shape_unless_told_and_refuses_unknown_ones(tmp_path,
                                                                                        capsys):
    from bench import quality

    assert quality.parse_args([]).shapes == ["ml-100k", "long-tail"]
    assert quality.parse_args(["--shapes", "long-tail"]).shapes == ["long-tail"]
    with pytest.raises(SystemExit):
        quality.parse_args(["--shapes", "ml-100k,tiny"])
    assert "unknown shape(s) ['tiny']" in capsys.readouterr().err
    # The --synthetic-* flags resize the ml-100k shape, not the long tail.
    args = quality.parse_args(["--synthetic-users", "30", "--synthetic-items", "40",
                               "--synthetic-interactions", "600"])
    folder = quality.synthetic_data("ml-100k", args, str(tmp_path / "small"))
    assert sorted(os.listdir(folder)) == ["GENERATED_WITH", "interactions.csv", "items.csv",
                                          "users.csv"]
    with open(os.path.join(folder, "items.csv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 41


def test_a_crontab_line_reaches_kfp_with_seconds_in_front():
    from kubeflow.schedules import kfp_cron

    assert kfp_cron("0 3 * * *") == "0 0 3 * * *"
    assert kfp_cron("  */15  9-17 * * MON-FRI ") == "0 */15 9-17 * * MON-FRI"
    assert kfp_cron("30 0 3 * * *") == "30 0 3 * * *"  # KFP's own six fields, as given
    assert kfp_cron("@every 6h") == "@every 6h" and kfp_cron("@weekly") == "@weekly"
    for bad in ("0 3 * *", "60 3 * * *", "0 3 32 * *", "0 3 * 13 *", "0 3 * * 8", "0-x 3 * * *",
                "61 0 3 * * *", "@every day"):
        with pytest.raises(ValueError, match="schedule"):
            kfp_cron(bad)


def test_a_request_log_and_the_gates_switch_come_from_flags():
    assert _config().data.request_log is None and _config().data.drift_gate is True
    config = _config("--request-log", "gs://b/requests/", "--accept-drift")
    assert config.data.request_log == "gs://b/requests/" and config.data.drift_gate is False


def test_spans_flags_name_the_window_and_the_pre_flight_check_reads_every_span(tmp_path, capsys):
    assert _config("--spans", "latest").data.spans == 1 and _config("--spans", "7").data.spans == 7
    assert _config().data.spans == 0 and _config("--spans", "all").data.spans == 0
    with pytest.raises(SystemExit):
        _config("--spans", "0")
    assert "expected all, latest or a number of spans" in capsys.readouterr().err
    data = tmp_path / "data"
    for span, interactions in (("span-1", "user_id,item_id,timestamp\n1,10,100\n"),
                               ("span-2", "user_id,item_id\n1,10\n")):
        os.makedirs(data / span)
        write(str(data / span), "interactions.csv", interactions)
    out = tmp_path / "out"
    assert cli.main(["run", "--data", str(data), "--spans", "2", "--output-dir", str(out),
                     "--serving-dir", str(tmp_path / "serving")]) == 2
    printed = capsys.readouterr().out
    assert "2 of 2 spans: span-1 .. span-2" in printed
    assert "span-2/interactions.csv:1: missing required column(s) ['timestamp']" in printed
    assert sorted(p.name for p in out.iterdir()) == ["logs", "run.lock"]  # nothing generated or run
