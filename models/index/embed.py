"""Embedding the catalogue with the candidate tower, then a columnar read.

Two ways with one output: ``embed_catalogue`` adds Beam steps (read, batch,
and each worker runs the retrieval model's ``candidate_embedding`` signature,
loaded once per worker, on its batches); ``embed_in_process`` runs a signature
the caller has already loaded on the same batches in this process. Both write
(item id, title, embedding) records as gzipped TFRecord shards, which the index
build reads back into arrays in batches: the catalogue never passes through a
per-item Python list.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from models import arrays, features, records
from models.retrieval.export import CANDIDATE_SIGNATURE

EMBEDDING = "embedding"
SHARD_PREFIX = "embeddings"

ITEM_SPEC = {
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.TITLE: tf.io.FixedLenFeature([], tf.string),
    features.GENRES: tf.io.VarLenFeature(tf.string),
    features.YEAR: tf.io.FixedLenFeature([], tf.int64),
    features.TAGS: tf.io.VarLenFeature(tf.string),
}


def _embedded_records(embed, serialized: Sequence[bytes]) -> Iterator[bytes]:
    """Serialized catalogue examples (a batch) -> serialized (id, title, embedding) examples."""
    parsed = tf.io.parse_example(tf.constant(serialized), ITEM_SPEC)
    genres = tf.sparse.to_dense(parsed[features.GENRES], default_value=b"")
    tags = tf.sparse.to_dense(parsed[features.TAGS], default_value=b"")
    vectors = embed(item_id=parsed[features.ITEM_ID], title=parsed[features.TITLE], genres=genres,
                    year=parsed[features.YEAR], tags=tags)["embedding"].numpy()
    for item_id, title, vector in zip(parsed[features.ITEM_ID].numpy(), parsed[features.TITLE].numpy(),
                                      vectors):
        yield tf.train.Example(features=tf.train.Features(feature={
            features.ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item_id])),
            features.TITLE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[title])),
            EMBEDDING: tf.train.Feature(float_list=tf.train.FloatList(value=vector)),
        })).SerializeToString()


class _EmbedBatch(beam.DoFn):
    """Serialized catalogue examples (a batch) -> serialized (id, title, embedding) examples."""

    def __init__(self, model_dir: str):
        self._model_dir = model_dir
        self._embed = None

    def setup(self):
        self._embed = tf.saved_model.load(self._model_dir).signatures[CANDIDATE_SIGNATURE]

    def process(self, serialized):
        yield from _embedded_records(self._embed, serialized)


def embed_catalogue(pipeline: beam.Pipeline, model_dir: str, catalogue_files: Sequence[str],
                    output_dir: str, batch_size: int) -> str:
    """Adds the embedding steps to ``pipeline`` (run it to write the shards).

    Args:
      pipeline: a Beam pipeline (the executor's, configured by the pipeline's
        Beam arguments).
      model_dir: the retrieval model's SavedModel.
      catalogue_files: gzipped TFRecord catalogue examples.
      output_dir: where the shards go.
      batch_size: items per call of the candidate tower.

    Returns:
      The shards' file pattern.
    """
    prefix = os.path.join(output_dir, SHARD_PREFIX)
    _ = (pipeline
         | "Files" >> beam.Create(list(catalogue_files))
         | "Read" >> beam.io.ReadAllFromTFRecord(compression_type=beam.io.filesystem.CompressionTypes.GZIP)
         | "Batch" >> beam.BatchElements(min_batch_size=min(batch_size, 64), max_batch_size=batch_size)
         | "Embed" >> beam.ParDo(_EmbedBatch(model_dir))
         | "Write" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".gz",
                                              compression_type=beam.io.filesystem.CompressionTypes.GZIP))
    return prefix + "*"


def embed_in_process(embed, catalogue_files: Sequence[str], output_dir: str, batch_size: int) -> str:
    """``embed_catalogue``'s shards, written in this process by ``embed`` (the retrieval model's
    ``candidate_embedding`` signature, already loaded) on batches of ``batch_size`` items.

    Returns:
      The shards' file pattern.
    """
    tf.io.gfile.makedirs(output_dir)
    prefix = os.path.join(output_dir, SHARD_PREFIX)
    dataset = tf.data.TFRecordDataset(list(catalogue_files), compression_type="GZIP").batch(batch_size)
    with tf.io.TFRecordWriter(f"{prefix}-00000-of-00001.gz", options="GZIP") as writer:
        for batch in dataset:
            for record in _embedded_records(embed, batch.numpy().tolist()):
                writer.write(record)
    return prefix + "*"


def read_embeddings(pattern: str, batch_size: int = 65536,
                    dim: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads the shards back.

    Returns:
      (item_ids [n] str, titles [n] str, embeddings float32 [n, dim]).

    Raises:
      ValueError: the shards hold no items, or embeddings of different sizes.
    """
    files = records.expand([pattern])
    if dim is None:
        first = next(iter(tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(1)), None)
        if first is None:
            raise ValueError(f"no embedded items in {pattern}: is the catalogue empty?")
        dim = len(tf.train.Example.FromString(first.numpy()).features.feature[EMBEDDING]
                  .float_list.value)
    spec = {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
            features.TITLE: tf.io.FixedLenFeature([], tf.string),
            EMBEDDING: tf.io.FixedLenFeature([dim], tf.float32)}
    ids, titles, vectors = [], [], []
    for batch in records.batches(files, spec, batch_size):
        ids.append(batch[features.ITEM_ID])
        titles.append(batch[features.TITLE])
        vectors.append(batch[EMBEDDING])
    if not ids:
        raise ValueError(f"no embedded items in {pattern}: is the catalogue empty?")
    return (arrays.to_str(np.concatenate(ids)), arrays.to_str(np.concatenate(titles)),
            np.vstack(vectors).astype(np.float32))
