"""ExampleValidator executor that stops the run on anomalies, with a readable message.

The stock executor records anomalies and lets the pipeline go on; a recommender
trained on data that breaks its schema (ids missing, ratings negative, a new
column type) is not worth pushing, so the run stops here, before Transform.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as stock

from models.data.errors import DataError


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
    def _Validate(self, inputs, outputs) -> anomalies_pb2.Anomalies:  # noqa: N802 (TFX API)
        anomalies = super()._Validate(inputs, outputs)
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            raise DataError(
                "The data does not match the curated schema (schemas/*.pbtxt):\n"
                f"{describe(anomalies)}\n"
                "Fix the input data, or, if the change is intended, update the schema "
                "and have it reviewed.")
        return anomalies
