"""ExampleValidator executor that stops the run on anomalies and on drift, with a readable message.

The stock executor records anomalies and lets the pipeline go on; a recommender
trained on data that breaks its schema (ids missing, ratings negative, a new
column type) is not worth pushing, so the run stops here, before Transform.

Drift: with the statistics of the data the served version learned from
(``baseline_statistics``), each split's statistics are compared with the same split's
there by TFDV's own comparators, as the schema sets them (``drift_comparator``:
L-infinity distance for categorical features, Jensen-Shannon divergence for numeric
ones). Every distance is written to ``drift.json`` in the anomalies artifact (the
summary and the report show them); a train-split distance beyond its threshold stops
the run, naming the feature, the distance and the threshold (``drift_gate`` 0: reported only).

Serving skew: with a log of served requests (``request_log``, recommender/request_log.py), the
features the requests carry that have a ``skew_comparator`` in the schema (age, gender,
occupation) are compared with the train split's the same way (models/data/skew.py); the
distances go into ``drift.json`` under "skew", and one beyond its threshold stops the run too.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as stock
from tfx.types import artifact_utils
from tfx.utils import io_utils

from models import features
from models.data import skew
from models.data.errors import DataError
from recommender import request_log

DRIFT_GATE = "drift_gate"
REQUEST_LOG = "request_log"
DRIFT_FILE = "drift.json"
SCHEMA_FILE = "schemas/interactions/schema.pbtxt"


def drift_rows(anomalies: anomalies_pb2.Anomalies):
    """[(feature, comparator, distance, threshold)] of TFDV's drift measurements."""
    rows = []
    for info in anomalies.drift_skew_info:
        for measured in info.drift_measurements:
            kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(measured.type)
            rows.append((".".join(info.path.step), kind.lower(), float(measured.value),
                         float(measured.threshold)))
    return rows


def describe(anomalies: anomalies_pb2.Anomalies) -> str:
    """One line per anomalous feature: name, short and long description."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(r.description or r.short_description for r in info.reason)
        lines.append(f"  feature '{feature}': {info.short_description}: {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"  dataset: {info.short_description}: {info.description}")
    return "\n".join(lines)


class Executor(stock.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX API)
        result = super().Do(input_dict, output_dict, exec_properties)
        gate = int(exec_properties.get(DRIFT_GATE, 1) or 0)
        log = exec_properties.get(REQUEST_LOG) or ""
        if not (input_dict.get("baseline_statistics") or log):
            return result
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict["schema"])))
        current = artifact_utils.get_single_instance(input_dict["statistics"])
        report = {"served_statistics": None, "gate": bool(gate), "splits": {}}
        if input_dict.get("baseline_statistics"):
            served = artifact_utils.get_single_instance(input_dict["baseline_statistics"])
            report.update(served_statistics=served.uri, splits=self._drift(current, served, schema))
        if log:
            report["skew"] = self._skew(current, schema, log)
        out = artifact_utils.get_single_instance(output_dict["anomalies"])
        with tf.io.gfile.GFile(os.path.join(out.uri, DRIFT_FILE), "w") as f:
            json.dump(report, f, indent=2)
        if gate:
            _stop_beyond(report)
        return result

    @staticmethod
    def _drift(current, served, schema):
        """{split: [measurement]} of every split both statistics hold."""
        from tfx.components.statistics_gen import stats_artifact_utils

        served_splits = set(artifact_utils.decode_split_names(served.split_names))
        measured = {}
        for split in artifact_utils.decode_split_names(current.split_names):
            if split not in served_splits:
                continue
            anomalies = tfdv.validate_statistics(
                stats_artifact_utils.load_statistics(current, split).proto(), schema,
                previous_statistics=stats_artifact_utils.load_statistics(served, split).proto())
            measured[split] = [{"feature": f, "comparator": c, "distance": d, "threshold": t}
                               for f, c, d, t in drift_rows(anomalies)]
        for row in measured.get(features.TRAIN, []):
            logging.info("Drift of %s vs the served data: %s %.4f (threshold %.4f)", row["feature"],
                         row["comparator"], row["distance"], row["threshold"])
        return measured

    @staticmethod
    def _skew(current, schema, log: str):
        """The request log's features against the train split's: {request_log, requests, rows}."""
        from tfx.components.statistics_gen import stats_artifact_utils

        try:
            rows = request_log.read(log)
        except request_log.RequestLogError as e:
            raise DataError(f"Serving skew: {e}") from None
        report = {"request_log": log, "requests": len(rows), "rows": []}
        columns = request_log.columns(rows)
        if columns:
            training = stats_artifact_utils.load_statistics(current, features.TRAIN).proto()
            report["rows"] = skew.measure(training, skew.statistics(columns), schema)
        for row in report["rows"]:
            logging.info("Serving skew of %s: %s %.4f (threshold %.4f)", row["feature"],
                         row["comparator"], row["distance"], row["threshold"])
        return report

    def _Validate(self, inputs, outputs) -> anomalies_pb2.Anomalies:  # noqa: N802 (TFX API)
        anomalies = super()._Validate(inputs, outputs)
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            raise DataError(
                "The data does not match the curated schema (schemas/*.pbtxt):\n"
                f"{describe(anomalies)}\n"
                "Fix the input data, or, if the change is intended, update the schema "
                "and have it reviewed.")
        return anomalies


def _stop_beyond(report) -> None:
    """Raises DataError naming each train-split drift, and each serving skew, beyond its threshold."""
    drifted = [r for r in report["splits"].get(features.TRAIN, []) if r["distance"] > r["threshold"]]
    if drifted:
        raise DataError(
            f"The data drifted from what the served model learned from "
            f"({report['served_statistics']}), beyond the schema's drift comparators "
            f"({SCHEMA_FILE}):\n{_lines(drifted)}\nCheck the input feed; if the change is real, raise "
            f"the feature's threshold in the schema, or run once with --accept-drift.")
    skewed = [r for r in (report.get("skew") or {}).get("rows", []) if r["distance"] > r["threshold"]]
    if skewed:
        raise DataError(
            f"The served requests in {report['skew']['request_log']} carry features whose "
            f"distribution differs from the training data's, beyond the schema's skew comparators "
            f"({SCHEMA_FILE}):\n{_lines(skewed)}\nCheck what the clients send (units, spelling, "
            f"codes); if the change is real, raise the feature's skew threshold in the schema, or "
            f"run once with --accept-drift.")


def _lines(rows) -> str:
    return "\n".join(f"  feature '{r['feature']}': {r['comparator']} distance {r['distance']:.4f} > "
                     f"threshold {r['threshold']:g}" for r in rows)
