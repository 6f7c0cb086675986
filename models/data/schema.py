"""The curated schemas of the project (``schemas/``) as the readers use them.

ExampleValidator checks every run against these files; the readers check the
numeric domains too, so a value the schema refuses is named by file, line and
field before any component starts, not 20 seconds later without a row.
"""

from __future__ import annotations

import os
from typing import Dict

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models.data.tables import Domain

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "schemas")
INTERACTIONS_SCHEMA = os.path.join(SCHEMA_DIR, "interactions", "schema.pbtxt")


def domains(path: str = INTERACTIONS_SCHEMA) -> Dict[str, Domain]:
    """Feature name -> the numeric range its int_domain / float_domain allows ({} without a file)."""
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    out = {}
    source = f"the schema ({os.path.relpath(path, os.path.dirname(SCHEMA_DIR))})"
    for feature in schema.feature:
        kind = feature.WhichOneof("domain_info")
        if kind in ("int_domain", "float_domain"):
            domain = getattr(feature, kind)
            out[feature.name] = Domain(domain.min if domain.HasField("min") else None,
                                       domain.max if domain.HasField("max") else None, source)
    return out
