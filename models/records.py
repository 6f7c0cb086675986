"""Streaming reads of Examples artifacts (works on local paths and gs://)."""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils

from models import arrays, features

RAW_ID_SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
}


def bytes_feature(*values: str) -> tf.train.Feature:
    """A tf.train.Example feature of UTF-8 strings."""
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def float_feature(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def split_files(examples_artifacts: Sequence, split: str) -> List[str]:
    """The gzipped TFRecord files of ``split`` of an Examples channel's artifacts."""
    uri = artifact_utils.get_split_uri(list(examples_artifacts), split)
    files = tf.io.gfile.glob(f"{uri}/*")
    if not files:
        raise FileNotFoundError(f"no files in split '{split}' at {uri}")
    return files


def expand(patterns: Sequence[str]) -> List[str]:
    """Files matching any of ``patterns`` (Trainer passes globs such as '.../Split-train/*')."""
    if isinstance(patterns, str):
        patterns = [patterns]
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no files match {list(patterns)}")
    return files


def _dense(parsed: Dict[str, object]) -> Dict[str, tf.Tensor]:
    """Variable-length features as dense [batch, max] tensors padded with ''/0."""
    return {key: tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
            for key, value in parsed.items()}


def batches(files: Sequence[str], spec: Dict[str, object], batch_size: int = 4096) -> Iterator[dict]:
    """Parsed batches of examples, in file order, as dicts of numpy arrays (padded if variable)."""
    dataset = (tf.data.TFRecordDataset(expand(files), compression_type="GZIP")
               .batch(batch_size)
               .map(lambda x: _dense(tf.io.parse_example(x, spec)),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(2))
    for batch in dataset.as_numpy_iterator():
        yield batch


def read_columns(files: Sequence[str], spec: Dict[str, object] = None,
                 batch_size: int = 4096) -> Dict[str, np.ndarray]:
    """Columns of ``spec`` (by default user_id, item_id, timestamp); ids decoded from UTF-8 to str;
    variable-length features [n, widest] padded with ''/0."""
    spec = spec or RAW_ID_SPEC
    parts: Dict[str, list] = {key: [] for key in spec}
    for batch in batches(files, spec, batch_size):
        for key in spec:
            parts[key].append(batch[key])
    out = {}
    for key, chunks in parts.items():
        # Variable-length features are padded per batch: pad every batch to the widest.
        width = max((c.shape[1] for c in chunks if c.ndim == 2), default=0)
        chunks = [np.pad(c, ((0, 0), (0, width - c.shape[1])),
                         constant_values=b"" if c.dtype == object else 0) if c.ndim == 2 else c
                  for c in chunks]
        column = np.concatenate(chunks) if chunks else np.array([])
        out[key] = arrays.to_str(column) if column.dtype == object else column
    return out
