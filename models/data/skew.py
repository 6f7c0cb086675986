"""Serving skew: the features served requests carry against the training data's, by TFDV's
own skew comparators (``skew_comparator`` in the interactions schema: L-infinity distance for
categorical features, Jensen-Shannon divergence for numeric ones).

Plain values in (one list of per-request values per feature, see
``recommender.request_log.columns``), TFDV statistics and measurements out.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from models import features

# Features whose values are integers in the interactions schema; the others are text.
_INTEGERS = (features.AGE,)


def statistics(columns: Dict[str, Sequence[Optional[list]]]):
    """TFDV statistics of the requests (``columns``: feature -> a list of values per request,
    None where the request did not carry the feature), computed in memory."""
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    arrays, names = [], []
    for name, values in sorted(columns.items()):
        if name in _INTEGERS:
            arrays.append(pa.array([None if v is None else [int(x) for x in v] for v in values],
                                   pa.list_(pa.int64())))
        else:
            arrays.append(pa.array([None if v is None else [str(x).encode("utf-8") for x in v]
                                    for v in values], pa.list_(pa.binary())))
        names.append(name)
    return stats_impl.generate_statistics_in_memory(pa.RecordBatch.from_arrays(arrays, names),
                                                    stats_options.StatsOptions())


def compared_schema(schema, features: Sequence[str]):
    """``schema`` with only the features that have a skew comparator and are in ``features``
    (what the requests carry): the others would only report that serving lacks them."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    del out.feature[:]
    out.feature.extend(f for f in schema.feature if f.name in features and f.HasField("skew_comparator"))
    return out


def measure(training, serving, schema) -> List[Dict[str, object]]:
    """[{feature, comparator, distance, threshold}] of every feature with a skew comparator in
    ``schema`` that the serving statistics hold, training (one split's statistics) against
    serving."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    present = [f.path.step[0] for d in serving.datasets for f in d.features if f.path.step]
    anomalies = tfdv.validate_statistics(training, compared_schema(schema, present),
                                         serving_statistics=serving)
    rows = []
    for info in anomalies.drift_skew_info:
        for measured in info.skew_measurements:
            kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(measured.type)
            rows.append({"feature": ".".join(info.path.step), "comparator": kind.lower(),
                         "distance": float(measured.value), "threshold": float(measured.threshold)})
    return rows
