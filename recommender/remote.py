"""Asking a running TF Serving for a list: REST or gRPC (``recsys recommend --server``).

Both clients send the pushed model's signatures the inputs TF Serving's Predict
API expects and return plain Python lists:

* REST: ``POST http://HOST:PORT/v1/models/NAME[/versions/V]:predict`` with
  ``{"signature_name": ..., "inputs": {name: [values...]}}`` (the columnar
  format); the answer is ``{"outputs": {name: [...]}}``, an error
  ``{"error": "..."}`` with an HTTP status.
* gRPC: ``tensorflow_serving.apis.PredictionService/Predict`` with a
  ``PredictRequest`` (model spec + TensorProto inputs), via
  ``tensorflow-serving-api``.

Every call has a timeout; a server that cannot be reached, a timeout, or an
error answer raise ``ServingError`` naming the server, model and signature.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

from recommender import request_log
from recommender.signatures import predict_request, request_inputs

REST, GRPC = "rest", "grpc"
DEFAULT_MODEL = "recommender"


class ServingError(RuntimeError):
    """TF Serving could not answer (unreachable, timed out, or an error answer)."""


class RestClient:
    """TF Serving's REST API (port 8501 by default)."""

    def __init__(self, address: str, model: str = DEFAULT_MODEL, version: Optional[int] = None,
                 timeout: float = 5.0):
        self.address, self.model, self.version, self.timeout = address, model, version, timeout

    def _url(self) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"http://{self.address}/v1/models/{self.model}{version}:predict"

    def predict(self, signature: str, inputs: Dict[str, list]) -> Dict[str, list]:
        url = self._url()
        body = json.dumps({"signature_name": signature, "inputs": inputs}).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            raise ServingError(f"{url} (signature '{signature}'): HTTP {e.code}: {detail}") from e
        except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise ServingError(f"cannot reach TF Serving at {url} within {self.timeout} s: "
                               f"{reason}; is the server running and the port its REST port "
                               f"(--rest_api_port, 8501 by default)?") from e
        if "outputs" not in answer:
            raise ServingError(f"{url}: answer without 'outputs': {str(answer)[:200]}")
        outputs = answer["outputs"]
        # A signature with a single output is answered with the bare value.
        return outputs if isinstance(outputs, dict) else {"output": outputs}


class GrpcClient:
    """TF Serving's gRPC API (port 8500 by default)."""

    def __init__(self, address: str, model: str = DEFAULT_MODEL, version: Optional[int] = None,
                 timeout: float = 5.0):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.address, self.model, self.version, self.timeout = address, model, version, timeout
        self._channel = grpc.insecure_channel(address)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict(self, signature: str, inputs: Dict[str, list]) -> Dict[str, list]:
        import grpc
        import tensorflow as tf

        request = predict_request(signature, inputs, self.model, self.version)
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code()
            where = f"TF Serving at {self.address}, model '{self.model}', signature '{signature}'"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingError(f"cannot reach {where} within {self.timeout} s: {code.name} "
                                   f"({e.details()}); is the server running and the port its "
                                   f"gRPC port (--port, 8500 by default)?") from e
            raise ServingError(f"{where}: {code.name}: {e.details()}") from e
        return {name: tf.make_ndarray(proto).tolist() for name, proto in response.outputs.items()}

    def close(self) -> None:
        self._channel.close()


def client(address: str, protocol: str = REST, model: str = DEFAULT_MODEL,
           version: Optional[int] = None, timeout: float = 5.0):
    """A REST or gRPC client of TF Serving at ``address`` (HOST:PORT)."""
    if protocol == REST:
        return RestClient(address, model, version, timeout)
    if protocol == GRPC:
        return GrpcClient(address, model, version, timeout)
    raise ValueError(f"protocol must be '{REST}' or '{GRPC}', got '{protocol}'")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Recommendations(list):
    """(item_id, title, score) tuples, best first; ``unknown_items``: how many of the
    request's history and exclusion ids the model does not know (they were ignored)."""

    unknown_items: int = 0


def recommend(server, user_id: str, history: Optional[Sequence[str]] = None, age: int = 0,
              gender: str = "", occupation: str = "", exclude: Optional[Sequence[str]] = None,
              k: Optional[int] = None, log: Optional[str] = None) -> List[Tuple[str, str, float]]:
    """(item_id, title, score) of one user's list, best first, as ``Recommendations``.

    ``server``: anything with ``predict(signature, inputs) -> outputs`` (a REST
    or gRPC client, or ``client.LocalModel`` for a SavedModel on disk). ``log``: a request log
    file the request is appended to (recommender/request_log.py), for the serving-skew check.
    """
    signature, inputs = request_inputs(user_id, history, age, gender, occupation, exclude, k)
    if log:
        request_log.append(log, signature, inputs)
    out = server.predict(signature, inputs)
    item_ids = [_text(i) for i in out["item_ids"][0]]
    # A row's first `count` entries are its list; the rest pad a batch (recommender/servable.py).
    if "count" in out:
        item_ids = item_ids[:int(out["count"][0])]
    titles = []
    if item_ids:  # an empty list (nothing left to recommend) needs no titles
        titles = server.predict("lookup_titles", {"item_ids": item_ids})
        titles = titles.get("titles", titles.get("output"))
    found = Recommendations((i, _text(t), float(s))
                            for i, t, s in zip(item_ids, titles, out["scores"][0]))
    found.unknown_items = int(out["unknown_items"][0]) if "unknown_items" in out else 0
    return found
