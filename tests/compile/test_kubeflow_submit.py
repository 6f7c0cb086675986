"""Level 3: recsys submit / status / schedules through the real kfp.Client against a recording KFP
API server on 127.0.0.1 (answers in the v2beta1 REST formats)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli import main as cli
from kubeflow import runner
from pipeline.config import PipelineConfig


class _Recorder(BaseHTTPRequestHandler):
    calls = []
    # The recurring runs the server holds: id -> the created body, with its status.
    recurring = {}

    def _answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server API)
        self.calls.append(("GET", self.path, None, self.headers.get("Authorization")))
        if self.path.startswith("/apis/v2beta1/healthz"):
            return self._answer({"multi_user": False})
        if self.path.startswith("/apis/v2beta1/experiments"):
            return self._answer({"experiments": [], "total_size": 0})
        if self.path.startswith("/apis/v2beta1/recurringruns"):
            return self._answer({"recurringRuns": list(self.recurring.values()),
                                 "total_size": len(self.recurring)})
        if self.path.startswith("/apis/v2beta1/runs/run-1"):
            return self._answer({"run_id": "run-1", "display_name": "nightly", "state": "SUCCEEDED",
                                 "run_details": {"task_details": [
                                     {"display_name": "RetrievalTrainer", "state": "SUCCEEDED"},
                                     {"display_name": "Pusher", "state": "SUCCEEDED"}]}})
        self.send_error(404)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.calls.append(("POST", self.path, body, self.headers.get("Authorization")))
        if self.path == "/apis/v2beta1/experiments":
            return self._answer({"experiment_id": "exp-1", "display_name": body.get("display_name")})
        if self.path == "/apis/v2beta1/runs":
            return self._answer({"run_id": "run-1", "display_name": body.get("display_name"),
                                 "state": "PENDING"})
        if self.path == "/apis/v2beta1/recurringruns":
            made = {**body, "recurring_run_id": f"rr-{len(self.recurring) + 1}",
                    "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED"}
            self.recurring[made["recurring_run_id"]] = made
            return self._answer(made)
        for action, status in ((":enable", "ENABLED"), (":disable", "DISABLED")):
            if self.path.startswith("/apis/v2beta1/recurringruns/") and self.path.endswith(action):
                self.recurring[self.path.split("/")[-1][:-len(action)]]["status"] = status
                return self._answer({})
        self.send_error(404)

    def do_DELETE(self):  # noqa: N802
        self.calls.append(("DELETE", self.path, None, self.headers.get("Authorization")))
        if self.path.startswith("/apis/v2beta1/recurringruns/"):
            del self.recurring[self.path.split("/")[-1]]
            return self._answer({})
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Recorder.calls, _Recorder.recurring = [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.calls
    httpd.shutdown()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = tmp_path_factory.mktemp("submit") / "pipeline.yaml"
    runner.compile_pipeline(PipelineConfig(), str(path), data_root="gs://b/data",
                            pipeline_root="gs://b/root",
                            node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"})
    return str(path)


def test_submit_sends_the_spec_the_platform_spec_and_the_runtime_config(server, package, tmp_path,
                                                                          capsys):
    host, calls = server
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    assert cli.main(["submit", "--host", host, "--package", package, "--experiment", "nightly",
                     "--pipeline-root", "gs://b/other-root", "--run-name", "nightly",
                     "--token-file", str(token), "--param", "retrieval.epochs=3",
                     "--param", "top_k=20", "--param", "data_root=gs://b/newer-data"]) == 0
    out = capsys.readouterr().out
    assert f"{host}/#/runs/details/run-1" in out and "recsys status run-1" in out
    paths = [(method, path.split("?")[0]) for method, path, _, _ in calls]
    assert ("POST", "/apis/v2beta1/experiments") in paths
    assert paths[-1] == ("POST", "/apis/v2beta1/runs")
    assert any(path.startswith("/apis/v2beta1/experiments") for method, path in paths if method == "GET")
    run = calls[-1][2]
    assert run["experiment_id"] == "exp-1" and run["display_name"] == "nightly"
    spec, platform = runner.load(package)
    # With a platform spec, the run's pipeline_spec holds both documents (KFP's API format).
    sent = run["pipeline_spec"]
    assert sent["pipeline_spec"]["root"]["dag"]["tasks"].keys() == spec["root"]["dag"]["tasks"].keys()
    kubernetes = sent["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert kubernetes == platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert run["runtime_config"]["pipeline_root"] == "gs://b/other-root"
    # Run parameters: one field of a section set, the rest of it as compiled.
    parameters = run["runtime_config"]["parameters"]
    assert parameters["top_k"] == 20 and parameters["data_root"] == "gs://b/newer-data"
    retrieval = json.loads(parameters["retrieval"])
    compiled = json.loads(spec["root"]["inputDefinitions"]["parameters"]["retrieval"]["defaultValue"])
    assert retrieval == {**compiled, "epochs": 3}
    # The token travels as a bearer header, never as a parameter.
    assert calls[-1][3] == "Bearer s3cret"
    assert "s3cret" not in json.dumps(run)


def test_status_prints_the_run_and_its_tasks(server, capsys):
    host, _ = server
    assert cli.main(["status", "run-1", "--host", host]) == 0
    out = capsys.readouterr().out
    assert "Pusher" in out and "Run run-1 (nightly): SUCCEEDED" in out


def test_submit_refuses_a_missing_package_and_a_bad_param(server, package, tmp_path, capsys):
    host, calls = server
    assert cli.main(["submit", "--host", host, "--package", str(tmp_path / "none.yaml")]) == 2
    assert "recsys compile first" in capsys.readouterr().err
    assert cli.main(["submit", "--host", host, "--package", package, "--param", "epochs"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["submit", "--host", host, "--package", package, "--param", "epochs=3"]) == 2
    assert "no parameter 'epochs'" in capsys.readouterr().err
    assert not [c for c in calls if c[0] == "POST"]


def test_submit_schedule_creates_one_recurring_run_at_a_time_without_catch_up(server, package,
                                                                               capsys):
    host, calls = server
    assert cli.main(["submit", "--host", host, "--package", package, "--experiment", "nightly",
                     "--schedule", "0 3 * * *", "--param", "retrieval.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "Scheduled rr-1" in out and "'0 0 3 * * *'" in out
    posts = [(path, body) for method, path, body, _ in calls if method == "POST"]
    assert [path for path, _ in posts] == ["/apis/v2beta1/experiments", "/apis/v2beta1/recurringruns"]
    made = posts[-1][1]
    # KFP's scheduler reads seconds first: the crontab line's 03:00 daily, not minute 3 hourly.
    assert made["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert int(made["max_concurrency"]) == 1 and made["no_catchup"] is True
    assert made["mode"] == "ENABLE" and made["experiment_id"] == "exp-1"
    spec, platform = runner.load(package)
    assert made["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"].keys() == \
        spec["root"]["dag"]["tasks"].keys()
    assert made["pipeline_spec"]["platform_spec"] == platform
    retrieval = json.loads(made["runtime_config"]["parameters"]["retrieval"])
    assert retrieval["epochs"] == 2


def test_schedules_list_pause_resume_and_delete(server, package, capsys):
    host, calls = server
    assert cli.main(["submit", "--host", host, "--package", package, "--schedule", "@daily",
                     "--paused", "--run-name", "daily"]) == 0
    assert "rr-1 (daily): DISABLED" in capsys.readouterr().out
    assert cli.main(["schedules", "resume", "rr-1", "--host", host]) == 0
    assert cli.main(["schedules", "list", "--host", host]) == 0
    out = capsys.readouterr().out
    assert "rr-1" in out and "enabled" in out and "@daily" in out and "1 recurring run(s)" in out
    assert cli.main(["schedules", "pause", "rr-1", "--host", host]) == 0
    assert _Recorder.recurring["rr-1"]["status"] == "DISABLED"
    assert cli.main(["schedules", "delete", "rr-1", "--host", host]) == 0
    assert not _Recorder.recurring
    sent = [(method, path) for method, path, _, _ in calls if method != "GET"]
    assert sent[-3:] == [("POST", "/apis/v2beta1/recurringruns/rr-1:enable"),
                         ("POST", "/apis/v2beta1/recurringruns/rr-1:disable"),
                         ("DELETE", "/apis/v2beta1/recurringruns/rr-1")]
    assert cli.main(["schedules", "pause", "--host", host]) == 2
    assert "needs the recurring run's id" in capsys.readouterr().err


def test_submit_refuses_an_unreadable_schedule_before_sending_anything(server, package, capsys):
    host, calls = server
    for bad, says in (("0 3 * *", "expected 5 fields"), ("0 25 * * *", "hour field's 25"),
                      ("@nightly", "unknown descriptor"), ("*/0 * * * *", "step '0'")):
        assert cli.main(["submit", "--host", host, "--package", package, "--schedule", bad]) == 2
        assert says in capsys.readouterr().err
    assert cli.main(["submit", "--host", host, "--package", package, "--paused"]) == 2
    assert not calls
