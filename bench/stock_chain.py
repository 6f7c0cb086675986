"""The stock TFX chain the cost benchmark measures this project against.

CsvExampleGen -> StatisticsGen -> SchemaGen -> Transform -> Trainer (one epoch of a small Keras
model) -> Pusher, on LocalDagRunner with Beam in memory (TFX's defaults): what a user of the TFX
templates would run on the same interactions file. Its user code is here too (by dotted path, as
the project's own), so the two are timed on equal terms: one process, TensorFlow imported once.

    python -m bench.stock_chain --data FOLDER_WITH_interactions.csv --output DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_USER, _ITEM, _TIME, _RATING = "user_id", "item_id", "timestamp", "rating"


def preprocessing_fn(inputs):
    """Vocabularies of the two ids, the time scaled to [0, 1], the rating as the label."""
    import tensorflow as tf
    import tensorflow_transform as tft

    def dense(key):
        value = inputs[key]
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(value, default_value=tf.zeros([], value.dtype))
        return tf.reshape(value, [-1])

    def ids(key):
        return tft.compute_and_apply_vocabulary(tf.strings.as_string(dense(key)), vocab_filename=key,
                                                num_oov_buckets=1)

    return {"user_idx": ids(_USER), "item_idx": ids(_ITEM),
            "time_scaled": tft.scale_to_0_1(tf.cast(dense(_TIME), tf.float32)),
            "label": tf.cast(dense(_RATING), tf.float32)}


def run_fn(fn_args) -> None:
    """One epoch of a matrix-factorisation regressor on the ratings; exports serving_default."""
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(fn_args.transform_output)
    spec = output.transformed_feature_spec()

    def dataset(files):
        return tf.data.experimental.make_batched_features_dataset(
            files, 256, spec, reader=lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
            label_key="label", num_epochs=1, shuffle=True)

    users = output.vocabulary_size_by_name(_USER) + 1
    items = output.vocabulary_size_by_name(_ITEM) + 1
    user_in = tf.keras.Input([1], name="user_idx", dtype=tf.int64)
    item_in = tf.keras.Input([1], name="item_idx", dtype=tf.int64)
    time_in = tf.keras.Input([1], name="time_scaled", dtype=tf.float32)
    user = tf.keras.layers.Flatten()(tf.keras.layers.Embedding(users, 16)(user_in))
    item = tf.keras.layers.Flatten()(tf.keras.layers.Embedding(items, 16)(item_in))
    score = tf.keras.layers.Dot(axes=1)([user, item])
    out = tf.keras.layers.Dense(1)(tf.keras.layers.Concatenate()([score, time_in]))
    model = tf.keras.Model([user_in, item_in, time_in], out)
    model.compile(optimizer="adam", loss="mse")
    model.fit(dataset(fn_args.train_files), validation_data=dataset(fn_args.eval_files), epochs=1,
              verbose=0)

    model.tft_layer = output.transform_features_layer()
    raw_spec = output.raw_feature_spec()
    raw_spec.pop(_RATING, None)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, raw_spec))
        return {"rating": model({k: transformed[k] for k in ("user_idx", "item_idx", "time_scaled")})}

    model.save(fn_args.serving_model_dir, save_format="tf", signatures={"serving_default": serve})


def create_pipeline(data_dir: str, root: str, beam_pipeline_args=()):
    """The stock chain over ``data_dir``'s interactions.csv, under ``root``."""
    from tfx import v1 as tfx

    gen = tfx.components.CsvExampleGen(input_base=data_dir)
    statistics = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"])
    transform = tfx.components.Transform(examples=gen.outputs["examples"],
                                         schema=schema.outputs["schema"],
                                         preprocessing_fn="bench.stock_chain.preprocessing_fn")
    trainer = tfx.components.Trainer(
        run_fn="bench.stock_chain.run_fn", examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"], schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=None), eval_args=tfx.proto.EvalArgs(num_steps=None))
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=os.path.join(root, "serving"))))
    return tfx.dsl.Pipeline(
        pipeline_name="stock-chain", pipeline_root=os.path.join(root, "pipeline_root"),
        components=[gen, statistics, schema, transform, trainer, pusher], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")),
        beam_pipeline_args=list(beam_pipeline_args))


def run(data_dir: str, root: str) -> str:
    """Runs the stock chain on the interactions of ``data_dir``; returns its ML Metadata path.

    CsvExampleGen reads every CSV file of its folder, so the interactions file is linked into a
    folder of its own.
    """
    from tfx import v1 as tfx

    os.makedirs(root, exist_ok=True)
    inputs = tempfile.mkdtemp(prefix="stock-input-", dir=root)
    source = os.path.join(os.path.abspath(data_dir), "interactions.csv")
    try:
        os.symlink(source, os.path.join(inputs, "interactions.csv"))
    except OSError:
        shutil.copy(source, inputs)
    sys.argv = sys.argv[:1]  # TFX parses absl flags from sys.argv
    tfx.orchestration.LocalDagRunner().run(create_pipeline(inputs, root))
    return os.path.join(root, "metadata.sqlite")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder holding interactions.csv")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run(args.data, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
