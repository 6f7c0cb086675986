"""Requests to the recommender's signatures: their inputs, dtypes and PredictRequest protos.

Shared by the servable (its TF Serving warm-up file), the in-process client
and the TF Serving clients, so all of them send what the signatures take.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple


def request_inputs(user_id: str, history: Optional[Sequence[str]] = None, age: int = 0,
                   gender: str = "", occupation: str = "", exclude: Optional[Sequence[str]] = None,
                   k: Optional[int] = None) -> Tuple[str, Dict[str, object]]:
    """The signature and [batch of 1] inputs of one user's request.

    A request with context (history, demographics, exclusions or k) goes to
    ``recommend_with_context``; there the user id may be empty (a visitor
    known only by the context). Otherwise ``serving_default``.

    ``k``: list length; None asks for the model's default.

    Raises:
      ValueError: an empty user id without context, or k < 1.
    """
    if k is not None and int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if history or age or gender or occupation or exclude or k is not None:
        return "recommend_with_context", {
            "user_id": [user_id or ""], "age": [int(age)], "gender": [gender],
            "occupation": [occupation], "history": [list(history or [""])],
            "exclude": [list(exclude or [""])], "k": int(k or 0)}
    if not user_id:
        raise ValueError("user id must not be empty (or give a history or demographics)")
    return "serving_default", {"user_id": [user_id]}


def input_dtype(name: str):
    """The TensorFlow dtype of a request input of the recommender's signatures."""
    import tensorflow as tf

    return {"age": tf.int64, "k": tf.int32}.get(name, tf.string)


def predict_request(signature: str, inputs: Dict[str, list], model: str = "",
                    version: Optional[int] = None):
    """A TF Serving ``PredictRequest`` of ``inputs`` for ``signature`` (gRPC, warm-up file)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=input_dtype(name)))
    return request
