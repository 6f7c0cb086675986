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
from models.data.errors import DataError

DRIFT_GATE = "drift_gate"
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
        if input_dict.get("baseline_statistics"):
            self._drift(input_dict, output_dict, int(exec_properties.get(DRIFT_GATE, 1) or 0))
        return result

    def _drift(self, input_dict, output_dict, gate: int) -> None:
        from tfx.components.statistics_gen import stats_artifact_utils

        current = artifact_utils.get_single_instance(input_dict["statistics"])
        served = artifact_utils.get_single_instance(input_dict["baseline_statistics"])
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict["schema"])))
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
        out = artifact_utils.get_single_instance(output_dict["anomalies"])
        with tf.io.gfile.GFile(os.path.join(out.uri, DRIFT_FILE), "w") as f:
            json.dump({"served_statistics": served.uri, "gate": bool(gate), "splits": measured}, f,
                      indent=2)
        beyond = [row for row in measured.get(features.TRAIN, []) if row["distance"] > row["threshold"]]
        for row in measured.get(features.TRAIN, []):
            logging.info("Drift of %s vs the served data: %s %.4f (threshold %.4f)", row["feature"],
                         row["comparator"], row["distance"], row["threshold"])
        if beyond and gate:
            lines = "\n".join(f"  feature '{r['feature']}': {r['comparator']} distance "
                              f"{r['distance']:.4f} > threshold {r['threshold']:g}" for r in beyond)
            raise DataError(
                f"The data drifted from what the served model learned from ({served.uri}), "
                f"beyond the schema's drift comparators ({SCHEMA_FILE}):\n{lines}\n"
                f"Check the input feed; if the change is real, raise the feature's threshold in the "
                f"schema, or run once with --accept-drift.")

    def _Validate(self, inputs, outputs) -> anomalies_pb2.Anomalies:  # noqa: N802 (TFX API)
        anomalies = super()._Validate(inputs, outputs)
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            raise DataError(
                "The data does not match the curated schema (schemas/*.pbtxt):\n"
                f"{describe(anomalies)}\n"
                "Fix the input data, or, if the change is intended, update the schema "
                "and have it reviewed.")
        return anomalies
