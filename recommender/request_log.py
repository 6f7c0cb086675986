"""A log of the requests sent to the served recommender, for the serving-skew check.

One JSON object per line: the body TF Serving's REST Predict API takes, in its columnar form
``{"signature_name": ..., "inputs": {name: [one value per request]}}`` or its row form
``{"signature_name": ..., "instances": [{name: value}, ...]}``; other keys (``logged_at``) are
kept out of the way. ``recsys recommend --request-log FILE`` appends each request it sends (to
a TF Serving or the newest pushed model); a gateway in front of TF Serving can write the same
lines. A log is a file or a folder of such files (local or on an object store).

``read`` turns a log into one row per request with the features the skew check compares
(``FEATURES``): the user's id, demographics and history as the request carried them. A value
the request left at its "not given" default (``""``, age 0, history padding) is absent from the
row: the check compares what clients send with what training saw, not how often they send it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

import tensorflow as tf

from models.features import AGE, GENDER, HISTORY, OCCUPATION, USER_ID

FEATURES = (USER_ID, AGE, GENDER, OCCUPATION, HISTORY)
_TEXT = (USER_ID, GENDER, OCCUPATION)


class RequestLogError(ValueError):
    """A log line that is not a request body (names the file, the line and what is wrong)."""


def append(path: str, signature: str, inputs: Mapping[str, object]) -> None:
    """Appends one request body (columnar inputs as ``signatures.request_inputs`` makes them, the
    form TF Serving's REST API takes) to the log file ``path``."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    line = json.dumps({"signature_name": signature, "inputs": dict(inputs),
                       "logged_at": round(time.time(), 3)}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as f:  # appends are local; object stores have none
        f.write(line + "\n")


def files(log: str) -> List[str]:
    """The files of ``log`` (itself, or every file of the folder, sorted).

    Raises:
      RequestLogError: nothing is there.
    """
    if tf.io.gfile.isdir(log):
        found = sorted(os.path.join(log, name.rstrip("/")) for name in tf.io.gfile.listdir(log)
                       if not tf.io.gfile.isdir(os.path.join(log, name)))
        if not found:
            raise RequestLogError(f"{log}: the request log folder holds no file")
        return found
    if not tf.io.gfile.exists(log):
        raise RequestLogError(f"{log}: no request log there (--request-log): give the file of "
                              f"served requests, or leave the flag out")
    return [log]


def read(log: str) -> List[Dict[str, object]]:
    """One row per logged request: {feature: value} for the ``FEATURES`` it carried.

    Raises:
      RequestLogError: a line that is not a request body, naming its file and line.
    """
    rows: List[Dict[str, object]] = []
    for path in files(log):
        with tf.io.gfile.GFile(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    rows.extend(_requests(json.loads(raw.decode("utf-8"))))
                except (ValueError, TypeError, KeyError, AttributeError) as e:
                    raise RequestLogError(
                        f"{path}, line {number}: not a TF Serving request body ({e}); each line "
                        f"must be a JSON object with 'inputs' (name -> one value per request) or "
                        f"'instances' (one object per request)") from None
    return rows


def _requests(body) -> Iterator[Dict[str, object]]:
    if not isinstance(body, dict):
        raise ValueError(f"a JSON {type(body).__name__}, not an object")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise ValueError("'instances' is not a list")
        for instance in instances:
            if not isinstance(instance, dict):
                instance = {USER_ID: instance}  # a signature with one input: bare values
            yield _row(instance)
        return
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise ValueError("no 'inputs' object and no 'instances' list")
    batched = {name: value for name, value in inputs.items() if name in FEATURES}
    if not isinstance(batched.get(USER_ID), list):
        raise ValueError("'inputs' has no 'user_id' list")
    size = len(batched[USER_ID])
    for name, value in batched.items():
        if not isinstance(value, list) or len(value) != size:
            raise ValueError(f"input '{name}' does not hold one value per request ({size})")
    for b in range(size):
        yield _row({name: value[b] for name, value in batched.items()})


def _row(values: Mapping[str, object]) -> Dict[str, object]:
    row: Dict[str, object] = {}
    for name in _TEXT:
        value = values.get(name)
        if value not in (None, ""):
            row[name] = str(value)
    age = values.get(AGE)
    if age not in (None, "", 0):
        row[AGE] = int(age)
    history = values.get(HISTORY)
    if isinstance(history, str):
        history = [history]
    items = [str(i) for i in (history or []) if i not in (None, "")]
    if items:
        row[HISTORY] = items
    return row


def columns(rows: Sequence[Mapping[str, object]]) -> Dict[str, List[Optional[list]]]:
    """The rows as one list per feature (a list of values per row, None where absent), the
    layout of TFDV's statistics input."""
    out: Dict[str, List[Optional[list]]] = {name: [] for name in FEATURES}
    for row in rows:
        for name in FEATURES:
            value = row.get(name)
            out[name].append(None if value is None else value if isinstance(value, list) else [value])
    return {name: values for name, values in out.items() if any(v is not None for v in values)}
