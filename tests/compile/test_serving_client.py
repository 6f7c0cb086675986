"""Level 3: the TF Serving clients against servers that speak TF Serving's documented formats.

No TF Serving binary runs on this machine. Two in-process stand-ins answer as
TF Serving documents its APIs, by calling a real recommender SavedModel's
signatures: a REST server (``POST /v1/models/NAME[/versions/V]:predict``, the
columnar ``inputs``/``outputs`` JSON format, ``{"error": ...}`` answers) and a
gRPC server implementing ``tensorflow_serving.apis.PredictionService/Predict``
with ``tensorflow-serving-api``'s own messages and service definition.
"""

import json
import os
import re
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from cli import main as cli
from models.index import servable
from pipeline.config import RerankConfig
from recommender import client, remote
from recommender import servable as recommender
from tests.support import make_index

pytestmark = pytest.mark.slow

MODEL = "recommender"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real recommender SavedModel (retrieval order) over the hand-made index servable."""
    root = tmp_path_factory.mktemp("served")
    servable.save(make_index(), str(root / "index"))
    index = tf.saved_model.load(str(root / "index"))
    recommender.save(recommender.Recommender(index, None, RerankConfig(), top_k=3),
                     str(root / "recommender" / "1"))
    return str(root / "recommender" / "1")


def _call(model, signature, inputs):
    """Runs a signature on inputs converted to its declared dtypes, as TF Serving does."""
    if signature not in model.signatures:
        raise KeyError(f'Serving signature name: "{signature}" not found in signature def')
    function = model.signatures[signature]
    specs = function.structured_input_signature[1]
    missing = sorted(set(specs) - set(inputs))
    if missing:
        raise ValueError(f"Missing input(s) {missing} for signature: {signature}")
    out = function(**{name: tf.constant(values, specs[name].dtype)
                      for name, values in inputs.items()})
    return {name: value.numpy() for name, value in out.items()}


def _json_ready(value):
    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if hasattr(value, "item") else value


class _Rest(BaseHTTPRequestHandler):
    model = None
    delay = 0.0

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server API)
        time.sleep(self.delay)
        match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", self.path)
        if not match:
            return self._answer(404, {"error": f"Malformed request: POST {self.path}"})
        if match.group(1) != MODEL:
            return self._answer(404, {"error": f"Servable not found for request: "
                                               f"Latest({match.group(1)})"})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            out = _call(self.model, request.get("signature_name", "serving_default"),
                        request["inputs"])
        except (KeyError, ValueError) as e:
            return self._answer(400, {"error": str(e).strip('"')})
        outputs = {name: _json_ready(value) for name, value in out.items()}
        # TF Serving answers a single-output signature with the bare value.
        self._answer(200, {"outputs": next(iter(outputs.values())) if len(outputs) == 1
                           else outputs})


class _Grpc(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model):
        self.model = model

    def Predict(self, request, context):  # noqa: N802 (gRPC API)
        if request.model_spec.name != MODEL:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({request.model_spec.name})")
        inputs = {name: tf.make_ndarray(proto).tolist() for name, proto in request.inputs.items()}
        try:
            out = _call(self.model, request.model_spec.signature_name or "serving_default", inputs)
        except (KeyError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in out.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


@pytest.fixture(scope="module")
def servers(model_dir):
    model = tf.saved_model.load(model_dir)
    handler = type("Handler", (_Rest,), {"model": model})
    rest = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    rpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Grpc(model), rpc)
    port = rpc.add_insecure_port("127.0.0.1:0")
    rpc.start()
    yield {remote.REST: f"127.0.0.1:{rest.server_address[1]}", remote.GRPC: f"127.0.0.1:{port}"}
    rest.shutdown()
    rpc.stop(None)


@pytest.mark.parametrize("protocol", [remote.REST, remote.GRPC])
def test_a_server_answers_as_the_saved_model_does(servers, model_dir, protocol):
    server = remote.client(servers[protocol], protocol, timeout=10)
    for request in (("u2",), ("u2", ["zzz", "c"]), ("someone-new", ["a"], 0, "F")):
        got = remote.recommend(server, *request)
        assert got == client.recommend(model_dir, *request)
    assert [item for item, _, _ in remote.recommend(server, "u1")] == ["b", "c", "d"]
    assert remote.recommend(server, "u1")[0][1] == "T b"  # titles through lookup_titles


@pytest.mark.parametrize("protocol", [remote.REST, remote.GRPC])
def test_error_answers_name_the_server_model_and_signature(servers, protocol):
    wrong = remote.client(servers[protocol], protocol, model="nope", timeout=10)
    with pytest.raises(remote.ServingError, match="Servable not found.*nope"):
        remote.recommend(wrong, "u1")
    server = remote.client(servers[protocol], protocol, timeout=10)
    with pytest.raises(remote.ServingError, match="signature 'no_such_signature'.*not found"):
        server.predict("no_such_signature", {"user_id": ["u1"]})
    with pytest.raises(ValueError, match="user id must not be empty"):
        remote.recommend(server, "")


@pytest.mark.parametrize("protocol", [remote.REST, remote.GRPC])
def test_an_unreachable_server_is_a_clear_error_within_the_timeout(protocol):
    with ThreadingHTTPServer(("127.0.0.1", 0), _Rest) as closed:
        address = f"127.0.0.1:{closed.server_address[1]}"  # bound, then closed: nobody listens
    start = time.time()
    with pytest.raises(remote.ServingError, match="cannot reach"):
        remote.recommend(remote.client(address, protocol, timeout=2), "u1")
    assert time.time() - start < 10


def test_a_slow_rest_server_times_out(model_dir):
    slow = type("Slow", (_Rest,), {"model": tf.saved_model.load(model_dir), "delay": 3.0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(remote.ServingError, match="within 0.5 s"):
            remote.recommend(remote.client(f"127.0.0.1:{server.server_address[1]}", timeout=0.5),
                             "u1")
    finally:
        server.shutdown()


def test_recommend_command_asks_a_server(servers, capsys):
    assert cli.main(["recommend", "--user", "u1", "--server", servers[remote.GRPC],
                     "--protocol", "grpc"]) == 0
    printed = capsys.readouterr().out
    assert "TF Serving grpc://" in printed and re.search(r"1\. b\s+T b", printed)
    assert cli.main(["recommend", "--user", "u1", "--server", "127.0.0.1:9",
                     "--timeout", "1"]) == 2
    assert "cannot reach TF Serving" in capsys.readouterr().err


def test_ids_the_model_does_not_know_are_counted_and_the_command_says_so(model_dir, capsys):
    found = client.recommend(model_dir, "u1", history=["b", "no-such-item"], exclude=["zz"])
    assert found.unknown_items == 2 and "b" not in [item for item, _, _ in found]
    serving_dir = os.path.dirname(os.path.dirname(model_dir))
    assert cli.main(["recommend", "--user", "u1", "--serving-dir", serving_dir,
                     "--history", "b,no-such-item"]) == 0
    assert ("note: 1 of the item ids in --history/--exclude are not in the model's catalogue"
            in capsys.readouterr().err)


def test_the_warm_up_file_replays_every_signature_as_tf_serving_does(model_dir):
    model = tf.saved_model.load(model_dir)
    replayed = []
    for record in tf.data.TFRecordDataset(os.path.join(model_dir, recommender.WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        inputs = {name: tf.make_ndarray(proto).tolist() for name, proto in request.inputs.items()}
        out = _call(model, request.model_spec.signature_name, inputs)
        batch = len(next(inputs[k] for k in ("user_id", "item_ids", "examples") if k in inputs))
        assert all(len(value) == batch for value in out.values())
        replayed.append(request.model_spec.signature_name)
    assert sorted(replayed) == sorted(model.signatures)
