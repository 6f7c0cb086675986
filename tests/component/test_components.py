"""Level 2: every executor's ``Do`` and every ``run_fn`` on a few KB of artifacts, outside a
pipeline run.

A chain of module fixtures makes the artifacts the way the pipeline does, one
component at a time (ExampleGen -> StatisticsGen -> validator -> Transform ->
retrieval run_fn -> IndexBuilder -> ranking run_fn -> assembler -> evaluator),
on 30 users and 40 items, so a component fault shows up here in seconds, named,
instead of minutes later in the end-to-end run.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.statistics_gen import executor as statistics_gen
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.transform import executor as transform
from tfx.proto import example_gen_pb2, transform_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils, proto_utils

from components.assembler import executor as assembler
from components.candidates import executor as candidate_examples
from components.evaluator import executor as evaluator
from components.example_gen import executor as example_gen
from components.index import executor as index_builder
from components.served import executor as served_model
from components.validation import executor as validator
from models import features, holdout, records, warm_states
from models.config import encode, fields
from models.data import readers, synthetic
from models.data.config import DataConfig
from models.data.errors import DataError
from models.data.schema import SCHEMA_DIR
from models.evaluation import candidates, metrics
from models.evaluation.config import EvalConfig
from models.index import contract, indexer
from models.index.config import IndexConfig
from models.ranking import export
from models.ranking import trainer as ranking_trainer
from models.ranking.config import RankingConfig
from models.retrieval import trainer as retrieval_trainer
from models.retrieval import warm
from models.retrieval.config import RetrievalConfig
from recommender import baseline, versions
from recommender.config import RerankConfig, base_of
from tests.support import gen_properties

pytestmark = pytest.mark.slow

USERS, ITEMS = 30, 40


def _artifact(cls, uri, splits=None):
    artifact = cls()
    artifact.uri = str(uri)
    os.makedirs(artifact.uri, exist_ok=True)
    if splits:
        artifact.split_names = artifact_utils.encode_split_names(list(splits))
    return artifact


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("components")


@pytest.fixture(scope="module")
def examples(root):
    """(interactions Examples, catalogue Examples) written by our ExampleGen executors."""
    data_dir = synthetic.write_canonical(str(root / "data"), num_users=USERS, num_items=ITEMS,
                                         num_interactions=900, seed=5)
    data = DataConfig(data_dir=data_dir, eval_fraction=0.25)
    interactions = _artifact(standard_artifacts.Examples, root / "examples")
    example_gen.InteractionsExecutor().Do(
        {}, {"examples": [interactions]},
        gen_properties(data_dir, data, (features.TRAIN, features.EVAL)))
    catalogue = _artifact(standard_artifacts.Examples, root / "catalogue")
    one_split = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=features.CATALOGUE, hash_buckets=1)]))
    example_gen.CatalogueExecutor().Do(
        {}, {"examples": [catalogue]},
        gen_properties(data_dir, data, (features.CATALOGUE,), one_split))
    return interactions, catalogue


def _read(artifact, split, spec):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*"))
    return [tf.io.parse_single_example(r, spec) for r in
            tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_example_gen_splits_each_users_timeline_by_time(examples):
    interactions, catalogue = examples
    spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
            features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}
    by_split = {split: _read(interactions, split, spec) for split in (features.TRAIN, features.EVAL)}
    assert len(by_split[features.TRAIN]) > 2 * len(by_split[features.EVAL]) > 0
    last_train = {}
    for row in by_split[features.TRAIN]:
        user = row[features.USER_ID].numpy()
        last_train[user] = max(last_train.get(user, 0), int(row[features.TIMESTAMP]))
    assert all(int(row[features.TIMESTAMP]) >= last_train.get(row[features.USER_ID].numpy(), 0)
               for row in by_split[features.EVAL])
    items = _read(catalogue, features.CATALOGUE,
                  {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string)})
    assert len(items) == ITEMS


@pytest.fixture(scope="module")
def statistics(root, examples):
    stats = _artifact(standard_artifacts.ExampleStatistics, root / "statistics",
                      (features.TRAIN, features.EVAL))
    statistics_gen.Executor().Do({"examples": [examples[0]]}, {"statistics": [stats]}, {})
    return stats


def _schema(root, name, edit=None):
    folder = root / name
    folder.mkdir(exist_ok=True)
    source = os.path.join(SCHEMA_DIR, "interactions", "schema.pbtxt")
    text = open(source).read()
    (folder / "schema.pbtxt").write_text(edit(text) if edit else text)
    return _artifact(standard_artifacts.Schema, folder)


def test_validator_passes_data_that_matches_the_schema(root, statistics):
    anomalies = _artifact(standard_artifacts.ExampleAnomalies, root / "anomalies",
                          (features.TRAIN, features.EVAL))
    validator.Executor().Do({"statistics": [statistics], "schema": [_schema(root, "schema")]},
                            {"anomalies": [anomalies]}, {"exclude_splits": "[]"})
    # The stock executor's record of each split, read back: written, and empty.
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    for split in (features.TRAIN, features.EVAL):
        files = glob.glob(os.path.join(anomalies.uri, f"Split-{split}", "*"))
        assert files, split
        record = anomalies_pb2.Anomalies()
        record.ParseFromString(open(files[0], "rb").read())
        assert not record.anomaly_info and not record.HasField("dataset_anomaly_info"), record


def test_validator_stops_the_run_naming_the_feature_out_of_its_schema(root, statistics):
    # A schema that allows only ratings of 5: the tiny data has others.
    def strict(text):
        assert "float_domain { min: 0.0 }" in text
        return text.replace("float_domain { min: 0.0 }", "float_domain { min: 5.0 max: 5.0 }", 1)
    anomalies = _artifact(standard_artifacts.ExampleAnomalies, root / "anomalies-strict",
                          (features.TRAIN, features.EVAL))
    with pytest.raises(DataError, match="feature 'rating'"):
        validator.Executor().Do(
            {"statistics": [statistics], "schema": [_schema(root, "strict", strict)]},
            {"anomalies": [anomalies]}, {"exclude_splits": "[]"})


def _flipped_ratings(root, examples):
    """The interactions Examples with every rating r written as 6 - r: a feed whose scale broke."""
    out = _artifact(standard_artifacts.Examples, root / "flipped", (features.TRAIN, features.EVAL))
    for split in (features.TRAIN, features.EVAL):
        folder = os.path.join(out.uri, f"Split-{split}")
        os.makedirs(folder)
        with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), "GZIP") as writer:
            for record in tf.data.TFRecordDataset(records.split_files([examples[0]], split),
                                                  compression_type="GZIP"):
                example = tf.train.Example.FromString(record.numpy())
                rating = example.features.feature[features.RATING].float_list
                rating.value[:] = [6.0 - v for v in rating.value]
                writer.write(example.SerializeToString())
    stats = _artifact(standard_artifacts.ExampleStatistics, root / "flipped-statistics",
                      (features.TRAIN, features.EVAL))
    statistics_gen.Executor().Do({"examples": [out]}, {"statistics": [stats]}, {})
    return stats


def test_drift_against_the_served_data_is_measured_and_a_broken_feed_stops_the_run(root, examples,
                                                                                   statistics):
    """TFDV's comparators as the schema sets them: the same data drifts by nothing and passes,
    with every distance written; a flipped rating scale is beyond the rating's Jensen-Shannon
    threshold and stops the run by name, unless the gate is off for the run."""
    schema = _schema(root, "drift-schema")
    same = _artifact(standard_artifacts.ExampleAnomalies, root / "drift-same",
                     (features.TRAIN, features.EVAL))
    validator.Executor().Do({"statistics": [statistics], "schema": [schema],
                             "baseline_statistics": [statistics]},
                            {"anomalies": [same]}, {"exclude_splits": "[]"})
    measured = json.load(open(os.path.join(same.uri, validator.DRIFT_FILE)))["splits"]
    train = {row["feature"]: row for row in measured[features.TRAIN]}
    assert {"gender", "occupation", "item_id", "age", "year", "rating"} <= set(train)
    assert all(row["distance"] == pytest.approx(0.0, abs=1e-9) for row in train.values())
    assert train["rating"]["comparator"] == "jensen_shannon_divergence"
    assert train["gender"]["comparator"] == "l_infty"
    flipped = _flipped_ratings(root, examples)
    broken = _artifact(standard_artifacts.ExampleAnomalies, root / "drift-broken",
                       (features.TRAIN, features.EVAL))
    with pytest.raises(DataError, match=r"feature 'rating': jensen_shannon_divergence distance "
                                        r"0\.\d+ > threshold 0\.05"):
        validator.Executor().Do({"statistics": [flipped], "schema": [schema],
                                 "baseline_statistics": [statistics]},
                                {"anomalies": [broken]}, {"exclude_splits": "[]"})
    accepted = _artifact(standard_artifacts.ExampleAnomalies, root / "drift-accepted",
                         (features.TRAIN, features.EVAL))
    validator.Executor().Do({"statistics": [flipped], "schema": [schema],
                             "baseline_statistics": [statistics]},
                            {"anomalies": [accepted]},
                            {"exclude_splits": "[]", validator.DRIFT_GATE: 0})
    rating = next(r for r in json.load(open(os.path.join(accepted.uri, validator.DRIFT_FILE)))[
        "splits"][features.TRAIN] if r["feature"] == "rating")
    assert rating["distance"] > rating["threshold"]


def _request_log(path, examples, gender=lambda g: g):
    """One recommend_with_context request per training interaction, with the user's stored
    demographics (``gender`` applied to the gender sent), as a TF Serving REST body per line."""
    from recommender import request_log

    columns = records.read_columns(records.split_files([examples[0]], features.TRAIN), {
        name: tf.io.FixedLenFeature([], dtype) for name, dtype in (
            (features.USER_ID, tf.string), (features.AGE, tf.int64), (features.GENDER, tf.string),
            (features.OCCUPATION, tf.string))})
    for user, age, sex, job in zip(columns[features.USER_ID], columns[features.AGE],
                                   columns[features.GENDER], columns[features.OCCUPATION]):
        sex = sex.decode() if isinstance(sex, bytes) else sex
        job = job.decode() if isinstance(job, bytes) else job
        request_log.append(str(path), "recommend_with_context", {
            "user_id": [user], "age": [int(age)], "gender": [gender(sex)], "occupation": [job],
            "history": [[""]], "exclude": [[""]], "k": 0})
    return str(path)


def test_serving_skew_of_a_request_log_is_measured_and_a_broken_client_stops_the_run(root, examples,
                                                                                   statistics, tmp_path):
    """The requests a client sent, against the train split, by the schema's skew comparators: the
    training users' own demographics skew by nothing and pass; a client that lower-cases gender
    is beyond its threshold and stops the run by name, unless the gate is off; a log line that is
    no request body stops it naming the file and line."""
    schema = _schema(root, "skew-schema")

    def validate(name, log, **properties):
        out = _artifact(standard_artifacts.ExampleAnomalies, tmp_path / name, (features.TRAIN, features.EVAL))
        validator.Executor().Do({"statistics": [statistics], "schema": [schema]}, {"anomalies": [out]},
                                {"exclude_splits": "[]", validator.REQUEST_LOG: log, **properties})
        return json.load(open(os.path.join(out.uri, validator.DRIFT_FILE)))

    report = validate("same", _request_log(tmp_path / "same.jsonl", examples))
    skewed = {row["feature"]: row for row in report["skew"]["rows"]}
    assert report["skew"]["requests"] > 0 and report["splits"] == {}
    assert set(skewed) == {"age", "gender", "occupation"}  # ids and history have no comparator
    assert all(row["distance"] == pytest.approx(0.0, abs=1e-6) for row in skewed.values())
    assert skewed["age"]["comparator"] == "jensen_shannon_divergence"
    lowered = _request_log(tmp_path / "lowered.jsonl", examples, gender=str.lower)
    with pytest.raises(DataError, match=r"lowered.jsonl carry features .*\n  feature 'gender': l_infty "
                                        r"distance 0\.\d+ > threshold 0\.3"):
        validate("lowered", lowered)
    accepted = validate("accepted", lowered, **{validator.DRIFT_GATE: 0})
    gender = next(r for r in accepted["skew"]["rows"] if r["feature"] == "gender")
    assert gender["distance"] > gender["threshold"] and accepted["gate"] is False
    with open(lowered, "a") as f:
        f.write("{not json\n")
    lines = sum(1 for _ in open(lowered))
    with pytest.raises(DataError, match=rf"Serving skew: .*lowered.jsonl, line {lines}: not a TF Serving"):
        validate("bad-line", lowered, **{validator.DRIFT_GATE: 0})


@pytest.fixture(scope="module")
def transformed(root, examples):
    """(transform graph, transformed examples): the stock executor running our preprocessing_fn."""
    graph = _artifact(standard_artifacts.TransformGraph, root / "transform_graph")
    out = _artifact(standard_artifacts.Examples, root / "transformed",
                    (features.TRAIN, features.EVAL))
    transform.Executor().Do(
        {"examples": [examples[0]], "schema": [_schema(root, "transform_schema")]},
        {"transform_graph": [graph], "transformed_examples": [out]},
        {"preprocessing_fn": "models.transform.preprocessing.preprocessing_fn",
         "splits_config": proto_utils.proto_to_json(transform_pb2.SplitsConfig(
             analyze=[features.TRAIN, features.EVAL], transform=[features.TRAIN, features.EVAL])),
         "force_tf_compat_v1": 0, "disable_statistics": 1, "custom_config": "null"})
    return graph, out


def test_preprocessing_fn_vocabularies_cover_both_splits(root, transformed):
    output = tft.TFTransformOutput(transformed[0].uri)
    # Every user has interactions (synthetic), so each is in the vocabulary once.
    assert output.vocabulary_size_by_name(features.USER_VOCAB) == USERS
    assert 0 < output.vocabulary_size_by_name(features.ITEM_VOCAB) <= ITEMS
    spec = output.transformed_feature_spec()
    assert {features.USER_IDX, features.ITEM_IDX, features.HISTORY_IDS} <= set(spec)
    # Gender, occupation and genres share one vocabulary, each token prefixed with its
    # feature's name, and each row's ids are its own values' tokens.
    ds = readers.read_dataset(str(root / "data"))
    tokens = [t.decode() for t in output.vocabulary_by_name(features.ATTRIBUTE_VOCAB)]
    genres = lambda item: [g for g in ds.items[item]["genres"] if g]  # noqa: E731
    interacted = set(ds.interactions[features.ITEM_ID])
    assert sorted(tokens) == sorted(
        {f"gender={u['gender']}" for u in ds.users.values()}
        | {f"occupation={u['occupation']}" for u in ds.users.values()}
        | {f"genres={g}" for item in interacted for g in genres(item)})
    users = output.vocabulary_by_name(features.USER_VOCAB)
    rows = next(records.batches(_files(transformed[1], features.TRAIN), spec, batch_size=10_000))
    items = output.vocabulary_by_name(features.ITEM_VOCAB)
    for user_idx, item_idx, gender, occupation, genre_ids in zip(
            rows[features.USER_IDX], rows[features.ITEM_IDX], rows[features.GENDER_IDX],
            rows[features.OCCUPATION_IDX], rows[features.GENRE_IDS]):
        user = ds.users[users[user_idx - 1].decode()]
        assert tokens[gender - 1] == f"gender={user['gender']}"
        assert tokens[occupation - 1] == f"occupation={user['occupation']}"
        item = items[item_idx - 1].decode()
        expected = [f"genres={g}" for g in genres(item)][:features.MAX_GENRES]
        assert [tokens[g - 2] for g in genre_ids if g] == expected


def _fn_args(root, name, **kwargs):
    model = root / name
    return FnArgs(serving_model_dir=str(model / "Format-Serving"), model_run_dir=str(root / f"{name}-run"),
                  **kwargs), _artifact(standard_artifacts.Model, model)


def _files(artifact, split):
    return [os.path.join(artifact_utils.get_split_uri([artifact], split), "*")]


@pytest.fixture(scope="module")
def retrieval(root, transformed):
    config = RetrievalConfig(epochs=2, batch_size=64, embedding_dim=16, feature_dim=8,
                             early_stopping_users=50)
    args, model = _fn_args(root, "retrieval", train_files=_files(transformed[1], features.TRAIN),
                           eval_files=_files(transformed[1], features.EVAL),
                           transform_output=transformed[0].uri, custom_config=fields(config))
    retrieval_trainer.run_fn(args)
    return model


def test_retrieval_run_fn_exports_the_deployed_model_and_its_holdout_twin(root, retrieval):
    training = json.load(open(root / "retrieval-run" / "training.json"))
    assert training["best_epoch"] in (1, 2) and training["refit"]["epochs"] == training["best_epoch"]
    # Several batches a call of the train function, and each epoch takes every batch once (its
    # last one shorter): the optimiser stepped ceil(examples / 64) times an epoch.
    assert training["steps_per_call"] > 1
    assert training["steps"] == training["epochs_run"] * -(-training["train_examples"] // 64)
    for path in (path_utils.serving_model_path(retrieval.uri),
                 os.path.join(retrieval.uri, holdout.HOLDOUT)):
        towers = tf.saved_model.load(path)
        out = towers.signatures["query_embedding"](
            user_id=tf.constant(["1"]), age=tf.constant([30], tf.int64),
            gender=tf.constant(["F"]), occupation=tf.constant([""]),
            history=tf.constant([["1", "2"]]), timestamp=tf.constant([0], tf.int64))
        assert out["embedding"].shape == (1, 16)


def test_an_untrained_retrieval_model_exports_towers_that_embed(root, transformed):
    # --epochs 0: the towers never saw a batch, so their variables are created while the export
    # traces the signatures; the SavedModel must still hold them.
    config = RetrievalConfig(epochs=0, embedding_dim=16, feature_dim=8, early_stopping_users=50)
    args, model = _fn_args(root, "untrained", train_files=_files(transformed[1], features.TRAIN),
                           eval_files=_files(transformed[1], features.EVAL),
                           transform_output=transformed[0].uri, custom_config=fields(config))
    retrieval_trainer.run_fn(args)
    towers = tf.saved_model.load(path_utils.serving_model_path(model.uri))
    assert len(towers.tower_variables) > 4
    out = towers.signatures["candidate_embedding"](
        item_id=tf.constant(["1", "2"]), title=tf.constant(["A", "B"]),
        genres=tf.constant([["Drama"], [""]]), year=tf.constant([1990, 0], tf.int64),
        tags=tf.constant([["cult classic"], [""]]))
    assert out["embedding"].shape == (2, 16)
    assert float(tf.reduce_max(tf.abs(out["embedding"][0] - out["embedding"][1]))) > 0
    # Tags are item text: a word of the title vocabulary given as a tag moves the embedding.
    word = tft.TFTransformOutput(transformed[0].uri).vocabulary_by_name(features.TITLE_VOCAB)[0]
    both = towers.signatures["candidate_embedding"](
        item_id=tf.constant(["1", "1"]), title=tf.constant(["A", "A"]),
        genres=tf.constant([["Drama"], ["Drama"]]), year=tf.constant([1990, 1990], tf.int64),
        tags=tf.constant([[word.decode()], [""]]))["embedding"]
    assert float(tf.reduce_max(tf.abs(both[0] - both[1]))) > 0


def _retrieval_config(**changes):
    return RetrievalConfig(**{**dict(epochs=2, batch_size=64, embedding_dim=16, feature_dim=8,
                                     early_stopping_users=50), **changes})


def test_a_warm_retrieval_run_starts_from_the_served_weights(root, transformed, retrieval):
    """The first run's states as the served ones: the warm holdout model starts exactly where
    the served twin ended (the same eval recall before any training); settings of another
    shape start cold, saying which weight differs."""
    first = json.load(open(root / "retrieval-run" / "training.json"))
    served = os.path.join(retrieval.uri, warm_states.ARTIFACT_DIR)
    assert sorted(os.listdir(served)) == [warm_states.DEPLOYED, warm_states.HOLDOUT]
    args, _ = _fn_args(root, "warm", train_files=_files(transformed[1], features.TRAIN),
                       eval_files=_files(transformed[1], features.EVAL), base_model=served,
                       transform_output=transformed[0].uri, custom_config=fields(_retrieval_config()))
    retrieval_trainer.run_fn(args)
    training = json.load(open(root / "warm-run" / "training.json"))
    started = training["warm_start"]["holdout"]
    assert started["warm"] is True
    recalls = first["val_recall_at_100"]
    assert started["recall_before_training"] == pytest.approx(max(recalls), abs=1e-6)
    assert started["vocabularies"][features.ITEM_VOCAB]["new"] == 0
    assert started["vocabularies"][features.ITEM_VOCAB]["gone"] == 0
    assert training["warm_start"]["deployed"]["warm"] is True
    # Patience 1 when warm: at most one epoch past the best (or past the served weights).
    assert training["epochs_run"] <= max(training["best_epoch"], 1) + 1
    args, _ = _fn_args(root, "other-shape", train_files=_files(transformed[1], features.TRAIN),
                       eval_files=_files(transformed[1], features.EVAL), base_model=served,
                       transform_output=transformed[0].uri,
                       custom_config=fields(_retrieval_config(embedding_dim=8, epochs=1)))
    retrieval_trainer.run_fn(args)
    started = json.load(open(root / "other-shape-run" / "training.json"))["warm_start"]["holdout"]
    assert started["warm"] is False and "other retrieval settings" in started["reason"]


def test_warm_start_carries_each_row_by_its_token(root, transformed, retrieval, tmp_path):
    """A served state whose item vocabulary is in another order, with one token this run does
    not have: every kept token's row lands on that token, the new token gets the served
    out-of-vocabulary row, and every other weight is copied as it is."""
    source = os.path.join(retrieval.uri, warm_states.ARTIFACT_DIR, warm_states.HOLDOUT)
    arrays = dict(np.load(os.path.join(source, warm.STATE)))
    tokens = json.load(open(os.path.join(source, warm.TOKENS)))
    items = tokens[features.ITEM_VOCAB]
    order = np.arange(len(items))[::-1]
    table = arrays["item_id"]
    arrays["item_id"] = np.concatenate([table[:1], table[1:][order]])
    shuffled = [items[k] for k in order]
    dropped = shuffled[0]
    shuffled[0] = "not-in-this-run"
    tokens[features.ITEM_VOCAB] = shuffled
    np.savez(tmp_path / warm.STATE, **arrays)
    json.dump(tokens, open(tmp_path / warm.TOKENS, "w"))
    output = tft.TFTransformOutput(transformed[0].uri)
    plan = warm.plan(str(tmp_path), output)
    assert plan.counts[features.ITEM_VOCAB] == {"kept": len(items) - 1, "new": 1, "gone": 1}
    config = _retrieval_config()
    model, *_ = retrieval_trainer._fit(config, {n: output.vocabulary_size_by_name(n)
                                                 for n in features.VOCABS}, output,
                                       _files(transformed[1], features.TRAIN), 0,
                                       warm_dir=str(tmp_path))
    carried = model.warm_slots()["item_id"][0].numpy()
    new_row = items.index(dropped) + 1
    kept = [row for row in range(1, len(items) + 1) if row != new_row]
    np.testing.assert_array_equal(carried[kept], table[kept])
    np.testing.assert_array_equal(carried[new_row], table[0])
    np.testing.assert_array_equal(model.warm_slots()["query_dense/0"][0].numpy(),
                                  arrays["query_dense/0"])
    assert plan.carried[features.ITEM_VOCAB][new_row] == False  # noqa: E712 (numpy bool)


@pytest.fixture(scope="module")
def index(root, examples, transformed, retrieval):
    out = _artifact(standard_artifacts.Model, root / "index")
    blessing = _artifact(standard_artifacts.ModelBlessing, root / "index-blessing")
    index_builder.Executor().Do(
        {"model": [retrieval], "transform_graph": [transformed[0]], "candidates": [examples[1]],
         "examples": [examples[0]]},
        {"index": [out], "blessing": [blessing]},
        {"config": encode(IndexConfig(flavour="exact", eval_queries=20))})
    return out, blessing


def test_index_builder_do_blesses_an_exact_index_that_keeps_the_contract(index):
    out, blessing = index
    stats = json.load(open(os.path.join(out.uri, index_builder.STATS_FILE)))
    # (An exact index's recall against exact search is 1.0 by construction: not a check here;
    # tests/e2e/test_e2e.py's coarse ScaNN index shows the gate measuring.)
    assert stats["flavour"] == "exact" and f"recall@{ITEMS}" in stats
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    for path in (path_utils.serving_model_path(out.uri), os.path.join(out.uri, holdout.HOLDOUT)):
        servable = contract.load(path)  # raises if a name of the contract is missing
        assert contract.candidates_of(servable) == ITEMS
        assert contract.users_of(servable) == USERS


def test_the_index_builder_embeds_the_same_catalogue_in_process_and_on_beam(root, examples, retrieval):
    # The builder embeds a catalogue under embed_in_process_bytes with the model it loaded
    # to build the servable, and on Beam from there on; both must give the same embeddings.
    model_dir = path_utils.serving_model_path(retrieval.uri)
    model = tf.saved_model.load(model_dir)
    files = records.split_files([examples[1]], features.CATALOGUE)
    embedded = {}
    for name, limit in (("in_process", 1 << 30), ("beam", 0)):
        embedded[name] = indexer._embedded(model, model_dir, files, str(root / f"embedded-{name}"),
                                           IndexConfig(embed_in_process_bytes=limit), beam.Pipeline)
        assert len(glob.glob(str(root / f"embedded-{name}" / "embeddings*"))) >= 1
    (ids, titles, vectors), (beam_ids, beam_titles, beam_vectors) = embedded["in_process"], embedded["beam"]
    assert len(ids) == ITEMS and sorted(ids) == sorted(beam_ids)
    order, beam_order = ids.argsort(), beam_ids.argsort()
    assert list(titles[order]) == list(beam_titles[beam_order])
    np.testing.assert_allclose(vectors[order], beam_vectors[beam_order], rtol=1e-5, atol=1e-6)
    assert float(np.abs(vectors).sum()) > 0  # a trained tower's embeddings, not zeros


@pytest.fixture(scope="module")
def ranker(root, examples, index):
    args, model = _fn_args(root, "ranker", train_files=_files(examples[0], features.TRAIN),
                           eval_files=_files(examples[0], features.EVAL),
                           base_model=path_utils.serving_model_path(index[0].uri),
                           custom_config=fields(RankingConfig(epochs=1, min_interactions=3)))
    ranking_trainer.run_fn(args)
    return model


def test_ranking_run_fn_exports_a_ranker_card_for_both_models(root, ranker):
    training = json.load(open(root / "ranker-run" / "training.json"))
    assert training["train_lists"] > 0 and isinstance(training["ranker_used"], bool)
    for path in (path_utils.serving_model_path(ranker.uri), os.path.join(ranker.uri, holdout.HOLDOUT)):
        model, card = export.load(path)
        assert model is not None and card.use_ranker == training["ranker_used"]
        scores = model.score({"query": tf.zeros([2, 5, 16]), "item": tf.zeros([2, 5, 16]),
                              "scalars": tf.zeros([2, 5, 13])})
        assert scores.shape == (2, 5)


def test_a_warm_ranking_run_starts_exactly_where_the_served_ranker_ended(root, examples, index, ranker,
                                                                       tmp_path):
    """The ranker fixture's states handed on with a copy of the index, as the retrieval trainer
    hands them on when it started warm: with no warm epoch the new ranker ranks the eval lists
    exactly as the served one did; a ranker of other layer sizes starts cold, naming the weight;
    and the fixture's own run, handed nothing, says why it trained from scratch."""
    first = json.load(open(root / "ranker-run" / "training.json"))
    assert first["warm_start"]["holdout"]["warm"] is False
    assert "no served ranker was handed on" in first["warm_start"]["holdout"]["reason"]
    handed = tmp_path / "index"
    shutil.copytree(index[0].uri, handed)
    for which in (warm_states.HOLDOUT, warm_states.DEPLOYED):
        served = os.path.join(ranker.uri, warm_states.ARTIFACT_DIR, which, warm_states.RANKER)
        shutil.copy(served, handed / warm_states.ARTIFACT_DIR / which / warm_states.SERVED_RANKER)

    def run(name, config):
        args, model = _fn_args(tmp_path, name, train_files=_files(examples[0], features.TRAIN),
                               eval_files=_files(examples[0], features.EVAL),
                               base_model=path_utils.serving_model_path(str(handed)),
                               custom_config=fields(config))
        ranking_trainer.run_fn(args)
        return json.load(open(tmp_path / f"{name}-run" / "training.json")), model

    training, model = run("warm", RankingConfig(epochs=1, warm_epochs=0, min_interactions=3))
    assert training["warm_start"]["holdout"] == {"warm": True, "epochs": 0}
    ranked = "eval_ndcg@10_ranked_order"
    assert training[ranked] == pytest.approx(first[ranked], abs=1e-9)
    # Its own state goes beside its exports for the assembly to push.
    assert os.path.exists(os.path.join(model.uri, warm_states.ARTIFACT_DIR, warm_states.HOLDOUT,
                                       warm_states.RANKER))
    training, _ = run("other-shape", RankingConfig(epochs=1, hidden_units=(8,), min_interactions=3))
    started = training["warm_start"]["holdout"]
    assert started["warm"] is False and started["epochs"] == 1 and "other ranking" in started["reason"]


@pytest.fixture(scope="module")
def assembled(root, examples, index, ranker):
    """(the deployed recommender, its holdout twin)."""
    out = _artifact(standard_artifacts.Model, root / "recommender")
    twin = _artifact(standard_artifacts.Model, root / "holdout_recommender")
    assembler.Executor().Do({"index": [index[0]], "ranker": [ranker], "examples": [examples[0]]},
                            {"model": [out], "holdout_model": [twin]},
                            {"config": encode(RerankConfig(diversity=0.2)), "top_k": 5})
    return out, twin


def test_assembler_do_builds_the_recommender_and_its_twin_with_the_rules(assembled):
    figures = json.load(open(os.path.join(assembled[0].uri, assembler.ASSEMBLY_FILE)))
    assert figures["deployed"]["items"] == ITEMS and figures["holdout"]["top_k"] == 5
    for artifact in assembled:
        model = tf.saved_model.load(path_utils.serving_model_path(artifact.uri))
        assert json.loads(model.settings.numpy())["rules"]["diversity"] == 0.2
        out = model.signatures["serving_default"](user_id=tf.constant(["1", "nobody"]))
        assert out["item_ids"].shape == (2, 5)
    # Both models' states, for the run after this version is served; not the states it was handed.
    states = os.path.join(path_utils.serving_model_path(assembled[0].uri), baseline.WARM_START)
    for which in (warm_states.HOLDOUT, warm_states.DEPLOYED):
        assert sorted(os.listdir(os.path.join(states, which))) == sorted(
            [warm_states.RANKER, *warm_states.RETRIEVAL_FILES])
    # The deployed model names its twin: once served, later runs compare with it.
    provenance = json.load(open(os.path.join(path_utils.serving_model_path(assembled[0].uri),
                                             baseline.PROVENANCE)))
    assert provenance["holdout_model"] == path_utils.serving_model_path(assembled[1].uri)


def test_served_model_do_outputs_nothing_before_a_push_and_the_twin_after(root, examples, assembled):
    serving = root / "serving"

    def outputs(name):
        return {"model": [_artifact(standard_artifacts.Model, root / name)],
                "warm_start": [_artifact(standard_artifacts.Model, root / f"{name}-warm")],
                "statistics": [_artifact(standard_artifacts.ExampleStatistics, root / f"{name}-stats")]}

    result = served_model.Executor().Do({"examples": [examples[0]]}, outputs("served-1"),
                                        {"serving_dir": str(serving)})
    assert list(result.output_artifacts["model"].artifacts) == []
    assert list(result.output_artifacts["warm_start"].artifacts) == []
    assert result.execution_properties["reason"].string_value.startswith("nothing is served yet")
    # A serving directory that cannot be read fails the task (fail closed): it is not "nothing
    # served", which would skip the served-model gates and push over what is served.
    with pytest.raises(versions.ServingDirError, match="cannot read the serving directory s3://"):
        served_model.Executor().Do({"examples": [examples[0]]}, outputs("served-x"),
                                   {"serving_dir": "s3://bucket/serving"})
    pushed = versions.push(path_utils.serving_model_path(assembled[0].uri), base_of(str(serving)))
    given = outputs("served-2")
    second = given["model"][0]
    result = served_model.Executor().Do({"examples": [examples[0]]}, given,
                                        {"serving_dir": str(serving)})
    assert [a.uri for a in result.output_artifacts["model"].artifacts] == [second.uri]
    # It learned from these same examples: no warm start (a rerun would repeat its training).
    assert list(result.output_artifacts["warm_start"].artifacts) == []
    assert "learned from this run's own data" in result.execution_properties["warm_start"].string_value
    learned = os.path.join(pushed, baseline.WARM_START, baseline.LEARNED_FROM)
    json.dump({"examples": "/elsewhere/examples/1", "input_fingerprint": "older files"},
              open(learned, "w"))
    given = outputs("served-3")
    result = served_model.Executor().Do({"examples": [examples[0]]}, given,
                                        {"serving_dir": str(serving)})
    states = path_utils.serving_model_dir(given["warm_start"][0].uri)
    assert [a.uri for a in result.output_artifacts["warm_start"].artifacts] == [given["warm_start"][0].uri]
    assert sorted(os.listdir(states)) == [warm_states.DEPLOYED, warm_states.HOLDOUT, baseline.LEARNED_FROM]
    assert second.get_string_custom_property("served_version") == "1"
    # A copy of the served version's holdout twin, where the stock Evaluator loads a model.
    copy = tf.saved_model.load(path_utils.serving_model_path(second.uri))
    twin = tf.saved_model.load(path_utils.serving_model_path(assembled[1].uri))
    users = tf.constant(["1", "2"])
    assert (copy.signatures["serving_default"](user_id=users)["item_ids"].numpy().tolist()
            == twin.signatures["serving_default"](user_id=users)["item_ids"].numpy().tolist())
    # The deployed model learned the eval split: were it the twin named, it is no baseline.
    deployed = baseline.Served("1", path_utils.serving_model_path(assembled[0].uri), "")
    held = records.read_columns(records.split_files([examples[0]], features.EVAL))
    checked = baseline.check_twin(deployed, metrics.group_by_user(held[features.USER_ID],
                                                                  held[features.ITEM_ID]),
                                  ("serving_default",))
    assert checked.twin is None and "learned from 100.0% of this run's eval" in checked.reason


def test_candidate_examples_do_writes_one_example_per_request_and_candidate(root, examples, assembled):
    out = _artifact(standard_artifacts.Examples, root / "request_examples")
    config = EvalConfig(requests=20, candidates_per_request=8, ndcg_k=5)
    candidate_examples.Executor().Do(
        {"model": [assembled[1]], "examples": [examples[0]], "candidates": [examples[1]]},
        {"request_examples": [out]}, {"config": encode(config)})
    files = records.split_files([out], features.EVAL)
    spec = {candidates.REQUEST: tf.io.FixedLenFeature([], tf.string),
            features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
            candidates.GAIN: tf.io.FixedLenFeature([], tf.float32),
            candidates.ACTIVITY: tf.io.FixedLenFeature([], tf.string),
            candidates.AGE_BAND: tf.io.FixedLenFeature([], tf.string)}
    rows = records.read_columns(files, spec)
    requests = set(rows[candidates.REQUEST])
    assert len(requests) == 20 and len(rows[features.ITEM_ID]) == 20 * 8
    assert out.get_int_custom_property("examples") == 160
    # Gains are the eval split's interactions, exactly.
    held = records.read_columns(records.split_files([examples[0]], features.EVAL))
    pairs = set(zip(held[features.USER_ID], held[features.ITEM_ID]))
    expected = [float((u, i) in pairs) for u, i in zip(rows[candidates.REQUEST], rows[features.ITEM_ID])]
    assert rows[candidates.GAIN].tolist() == expected
    assert out.get_int_custom_property("positives") == int(sum(expected))
    # Each request's activity band counts the user's training interactions (15 each here; the
    # same training files given twice count 30, another band).
    train_files = records.split_files([examples[0]], features.TRAIN)
    train = records.read_columns(train_files)
    per_user = {u: int(n) for u, n in zip(*np.unique(train[features.USER_ID], return_counts=True))}
    assert {(u, a) for u, a in zip(rows[candidates.REQUEST], rows[candidates.ACTIVITY])} == {
        (u, candidates.activity_band(per_user.get(u, 0))) for u in requests}
    twice, _ = candidates.build(path_utils.serving_model_path(assembled[1].uri), train_files * 2,
                                records.split_files([examples[0]], features.EVAL), 20, 8)
    doubled = tf.io.parse_example(twice, {candidates.REQUEST: tf.io.FixedLenFeature([], tf.string),
                                          candidates.ACTIVITY: tf.io.FixedLenFeature([], tf.string)})
    assert {(u.decode(), a.decode()) for u, a in zip(doubled[candidates.REQUEST].numpy(),
                                                     doubled[candidates.ACTIVITY].numpy())} == {
        (u, candidates.activity_band(2 * per_user.get(u, 0))) for u in requests}
    assert {candidates.activity_band(n) for n in per_user.values()} != {
        candidates.activity_band(2 * n) for n in per_user.values()}
    # score_examples ranks them as the served list does: listed items above the rest.
    model = tf.saved_model.load(path_utils.serving_model_path(assembled[1].uri))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]
    scores = model.signatures["score_examples"](examples=tf.constant(serialized))["scores"].numpy()
    assert scores.shape == (160,) and 0.0 <= scores.min() and scores.max() <= 1.0
    request = rows[candidates.REQUEST][0]
    mine = rows[candidates.REQUEST] == request
    top = model.signatures["serving_default"](user_id=tf.constant([request]))["item_ids"].numpy()[0]
    by_score = [i for _, i in sorted(zip(-scores[mine], rows[features.ITEM_ID][mine]))]
    in_list = [i for i in by_score if i.encode() in set(top)]
    # Candidates in the served top 5 come first, in the served order.
    assert in_list == [i.decode() for i in top if i.decode() in set(rows[features.ITEM_ID][mine])]
    assert by_score[:len(in_list)] == in_list


def test_evaluator_do_scores_the_twin_and_writes_a_blessing(root, examples, index, assembled):
    def evaluate_with(name, min_lift):
        evaluation = _artifact(standard_artifacts.ModelEvaluation, root / f"evaluation-{name}")
        blessing = _artifact(standard_artifacts.ModelBlessing, root / f"blessing-{name}")
        evaluator.Executor().Do(
            {"model": [assembled[1]], "examples": [examples[0]], "candidates": [examples[1]],
             "index_blessing": [index[1]], "baseline": [assembled[1]]},
            {"evaluation": [evaluation], "blessing": [blessing]},
            {"config": encode(EvalConfig(cutoffs=(5, 10), gate_metric="recall@5",
                                         min_lift_over_popularity=min_lift))})
        return json.load(open(os.path.join(evaluation.uri, evaluator.METRICS_FILE))), blessing

    result, blessing = evaluate_with("lenient", 0.0)
    assert set(result["metrics"]) == {"recommender", "retrieval_only", "popularity", "ease", "served"}
    # The same model as its own baseline: identical lists, so not worse than the served one.
    assert result["metrics"]["served"] == result["metrics"]["recommender"]
    assert result["blessing"]["not_worse_than_served"] is True
    assert 0.0 < result["metrics"]["recommender"]["recall@5"] <= 1.0
    # No lift required, not worse than served, the index blessed: blessed, and marked so.
    assert result["blessing"]["blessed"] is True and result["blessing"]["failures"] == []
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert blessing.get_int_custom_property("blessed") == 1
    # A lift over popularity no model reaches: not blessed, and the reason names the gate.
    result, blessing = evaluate_with("strict", 1e6)
    assert result["blessing"]["blessed"] is False
    assert [f for f in result["blessing"]["failures"] if "vs popularity" in f]
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
    assert blessing.get_int_custom_property("blessed") == 0
