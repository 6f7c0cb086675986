"""Level 4: the real local pipeline (LocalDagRunner, Beam, SQLite ML Metadata) on small data.

The suite's shared run (tests/conftest.py: shared_run) is read here, never written; each test
that runs the pipeline again (a coarse index, bad data, a rule change, a weak model, a kill)
forks it and reruns only what its change reaches. Pushed models are queried through the
``serving_default`` signature that TF Serving calls.
"""

import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from ml_metadata.metadata_store import metadata_store
from scipy.stats import rankdata
from tfx.components.pusher import executor as pusher_executor
from tfx.orchestration import metadata
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts

from bench import rerank as bench_rerank
from bench import serving as bench_serving
from cli import main as cli
from models import features, records
from models.evaluation import candidates, metrics
from pipeline.config import (
    DataConfig,
    EvalConfig,
    IndexConfig,
    PipelineConfig,
    RankingConfig,
    RetrievalConfig,
)
from presentation import summary as summary_lib
from recommender import client, push_lock, request_log
from recommender import servable as recommender_servable
from recommender.config import EASE_WEIGHTS
from recommender.signatures import request_inputs
from tests.support import (
    ACCENTED_ITEM,
    EVAL_REQUESTS,
    IN_PROCESS,
    ROOT,
    SHARED_RUN_SEED,
    fork,
    pipeline_process,
    run_pipeline,
    serves_every_user,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(shared_run):
    """(the shared run's configuration, summary and output directory), read only."""
    return shared_run.config, shared_run.summary, shared_run.out


def _held_out(shared_run):
    """(dataset, every item each user interacted with in what the pipeline was given,
    each user's later items, the given interactions' items)."""
    interactions = shared_run.given
    seen = metrics.group_by_user(interactions[features.USER_ID], interactions[features.ITEM_ID])
    return shared_run.dataset, seen, shared_run.future, interactions[features.ITEM_ID]


def test_every_component_ran_and_the_model_was_pushed(run):
    config, summary, _ = run
    names = [c["component"] for c in summary["components"]]
    assert len(names) == 15 and all(c["state"] == "COMPLETE" for c in summary["components"])
    assert {"ServedModel", "CandidateExamples", "Evaluator", "RecommenderEvaluator"} <= set(names)
    assert summary["pushed"]
    # The first run: nothing served, so no baseline artifact and no change thresholds.
    assert "baseline" not in summary
    assert summary["baseline_reason"].startswith("nothing is served yet")
    assert summary["evaluation"]["tfma"]["validation"] == {"ok": True, "failures": [],
                                                           "baseline": False}
    assert os.path.isfile(summary["report"])
    version = client.latest_version(config.push_dir)
    assert os.path.basename(version).isdigit()
    assert tf.io.gfile.exists(os.path.join(version, "saved_model.pb"))
    # TF Serving replays these before serving the version (tests/compile/test_serving_client.py).
    assert tf.io.gfile.exists(os.path.join(version, "assets.extra", "tf_serving_warmup_requests"))


def test_pushed_model_beats_popularity_on_held_out_data(run, shared_run):
    """Independent of the pipeline's own evaluator: scored on the interactions after
    everything the pipeline was given. The pushed model knows all of it: no user is ever
    served an item they interacted with in any split."""
    config, _, _ = run
    ds, seen, held, train_items = _held_out(shared_run)
    model = tf.saved_model.load(client.latest_version(config.push_dir))
    users = sorted(held)
    out = model.signatures["serving_default"](user_id=tf.constant(users))
    assert out["item_ids"].shape == (len(users), 10) and out["item_ids"].dtype == tf.string
    assert out["scores"].dtype == tf.float32
    scores = out["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    recs = {u: [i.decode() for i in row] for u, row in zip(users, out["item_ids"].numpy())}
    assert all(not set(recs[u]) & seen.get(u, set()) for u in users)  # every given item excluded
    assert all(i in ds.items for row in recs.values() for i in row)  # ids as in the input data
    popularity = metrics.popularity_recommendations(metrics.popularity_ranking(train_items), seen, users, 10)
    model_recall = metrics.mean_metrics(recs, held, [10], len(ds.items))["recall@10"]
    pop_recall = metrics.mean_metrics(popularity, held, [10], len(ds.items))["recall@10"]
    print(f"bound: pushed recall@10 {model_recall:.4f} vs popularity {pop_recall:.4f} "
          f"(seed {SHARED_RUN_SEED})")
    # Measured on this version (recall@10; popularity 0.1282): 0.2111 at retrieval seed 7,
    # 0.1614 at 42, 0.1994 at 11; the minimum, 1.26x popularity, sets the bound with 5% headroom.
    assert model_recall > 1.2 * pop_recall, (model_recall, pop_recall)


def test_unknown_user_gets_the_popular_list(run, shared_run):
    config, _, _ = run
    _, _, _, train_items = _held_out(shared_run)
    model = tf.saved_model.load(client.latest_version(config.push_dir))
    out = model.signatures["serving_default"](user_id=tf.constant(["no-such-user"]))
    got = [i.decode() for i in out["item_ids"].numpy()[0]]
    assert got == metrics.popularity_ranking(train_items)[:10]


def _context_lists(model, user_ids, histories, demographics):
    width = max(1, max(len(h) for h in histories))
    out = model.signatures["recommend_with_context"](
        user_id=tf.constant(user_ids),
        age=tf.constant([d[features.AGE] for d in demographics], tf.int64),
        gender=tf.constant([d[features.GENDER] for d in demographics]),
        occupation=tf.constant([d[features.OCCUPATION] for d in demographics]),
        history=tf.constant([h + [""] * (width - len(h)) for h in histories]),
        exclude=tf.constant([[""]] * len(user_ids)), k=tf.constant(0))
    return [[i.decode() for i in row] for row in out["item_ids"].numpy()]


def test_users_the_model_never_saw_get_personal_lists_from_a_request_history(run, shared_run):
    """Every held-out user is sent under a new id with only their given history and
    demographics: the lists must exclude that history, score near popularity on the later
    items (bound below) and come close to the lists the same users get as known users."""
    config, _, _ = run
    ds, seen, held, train_items = _held_out(shared_run)
    model = tf.saved_model.load(client.latest_version(config.push_dir))
    inter = ds.interactions
    timeline = {}
    for user, item, _ in sorted(zip(inter[features.USER_ID], inter[features.ITEM_ID],
                                    inter[features.TIMESTAMP]),
                                 key=lambda r: r[2]):
        if item in seen.get(user, set()):
            timeline.setdefault(user, []).append(item)
    users = sorted(held)
    lists = _context_lists(model, [f"new-{u}" for u in users],
                           [timeline[u][-features.MAX_HISTORY:] for u in users],
                           [ds.users[u] for u in users])
    recs = dict(zip(users, lists))
    assert all(not set(recs[u]) & set(timeline[u][-features.MAX_HISTORY:]) for u in users)
    popularity = metrics.popularity_recommendations(metrics.popularity_ranking(train_items), seen, users, 10)
    known = model.signatures["serving_default"](user_id=tf.constant(users))["item_ids"].numpy()
    known = {u: [i.decode() for i in row] for u, row in zip(users, known)}
    new_recall, known_recall, pop_recall = (metrics.mean_metrics(lists, held, [10],
                                                                 len(ds.items))["recall@10"]
                                            for lists in (recs, known, popularity))
    print(f"bound: sent-as-new recall@10 {new_recall:.4f} vs popularity {pop_recall:.4f}, known "
          f"{known_recall:.4f} (seed {SHARED_RUN_SEED})")
    # Measured on this version (recall@10 sent as new / as known; popularity 0.1282): seed 7
    # 0.1451 / 0.2111, seed 42 0.1265 / 0.1614, seed 11 0.1565 / 0.1994. On 300 users a request
    # history alone does not reliably beat popularity (0.99x at seed 42; the full-size claim is
    # bench-quality's, README): the bound is 0.9x, under the minimum with 9% headroom. It
    # recovers most of what the refitted model knows of a known user (whose user-id embedding
    # learned from every given interaction): at least 0.69 of it over the seeds, bound 0.65.
    assert new_recall > 0.9 * pop_recall, (new_recall, pop_recall)
    assert new_recall > 0.65 * known_recall, (new_recall, known_recall)
    # Nothing to personalise on: the popularity list, as serving_default gives unknown users.
    empty = {features.AGE: 0, features.GENDER: "", features.OCCUPATION: ""}
    assert _context_lists(model, ["nobody"], [[]], [empty])[0] == metrics.popularity_ranking(train_items)[:10]


def test_summary_reports_evaluation_and_index(run, shared_run):
    _, summary, _ = run
    metrics = summary["evaluation"]["metrics"]
    assert set(metrics) == {"recommender", "retrieval_only", "popularity", "ease"}
    for values in metrics.values():
        assert 0 < values["map@10"] <= 1 and 0 < values["recall@10"] <= 1 and values["novelty@10"] > 0
        assert 0 < values["diversity@10"] <= 1
    # Popularity's list is the same items for everyone: less novel than the model's.
    assert metrics["popularity"]["novelty@10"] < metrics["recommender"]["novelty@10"]
    assert summary["evaluation"]["blessing"]["blessed"] is True
    # The stock Evaluator: every metric per request (a sampled eval user and its 50 retrieved
    # candidates), so its example count counts requests.
    tfma = summary["evaluation"]["tfma"]
    overall = tfma["slices"]["Overall"]
    assert overall["example_count"]["candidate"] == EVAL_REQUESTS
    assert 0.5 < overall["auc"]["candidate"] <= 1 and 0 < overall["ndcg@10"]["candidate"] <= 1
    assert overall["min_label_position"]["candidate"] >= 1
    for column in ("gender", "age_band", "occupation", "activity"):
        assert any(name.startswith(f"{column}=") for name in tfma["slices"]), column
    assert summary["evaluation"]["blessing"]["tfma_blessed"] is True
    # EASE's part of the lists, as chosen on the eval split, in the printed summary.
    chosen = summary["assembly"]["holdout"]["ease"]
    assert set(chosen["weight_tried"]) == {str(w) for w in EASE_WEIGHTS}
    assert chosen["l2_tried"][str(chosen["l2"])] == max(chosen["l2_tried"].values())
    prior = summary["assembly"]["holdout"]["popularity_prior"]
    assert set(prior["weight_tried"]) == {str(w) for w in EASE_WEIGHTS}
    assert prior["weight_tried"][str(prior["weight"])] == max(prior["weight_tried"].values())
    text = summary_lib.render(summary)
    assert (f"EASE (l2 {chosen['l2']:g}) fused with the ranked list at weight "
            f"{chosen['weight']:g}") in text
    assert f"Requests by demographics alone: popularity fused in at weight {prior['weight']:g}" in text
    index = summary["index"]
    assert index["flavour"] == "exact" and index["items"] == 400 and index["users"] == 300
    # Items without interactions, counted from the Transform graph's vocabulary (every split).
    ds, _, _, train_items = _held_out(shared_run)
    assert index["new_items"] == len(set(ds.items) - set(train_items))
    # (The exact index's recall is 1.0 by construction; the coarse-index test shows the gate.)
    assert index["blessed"] is True
    assert index["gate"] == "recall@100" and index["eval_queries"] == 150  # 300 users: half each
    assert 0 < index["search_ms_p50"] <= index["search_ms_p99"] and index["request_ms_p50"] > 0
    assert summary["evaluation"]["blessing"]["index_blessed"] is True
    training = summary["retrieval_training"]
    assert 1 <= training["best_epoch"] <= training["epochs_run"] <= RetrievalConfig().epochs
    assert len(training["val_recall_at_100"]) == training["epochs_run"]
    assert training["config"]["logq_correction"] is True
    # Refit for deployment: every given interaction, the epochs early stopping chose.
    assert training["refit"]["epochs"] == training["best_epoch"]
    assert training["refit"]["train_examples"] == len(train_items) > training["train_examples"]
    # The ranker is refitted too, on the lists of every given interaction: each a longer
    # timeline's, so more positives. (Not necessarily more lists: a user gives one per anchor,
    # 1,500 here, and a list is kept only when a label is among its retrieved candidates, so
    # the two models' counts differ by chance: 1,499 refit vs 1,500 in a CI at 5d9529c. The
    # positives: 9,622 vs 7,847 there, 9,983 vs 8,362 at a9c35dd.)
    ranking = summary["ranking_training"]
    assert ranking["refit_lists"] > 0 and ranking["train_lists"] > 0, ranking
    assert ranking["refit_positives"] > ranking["train_positives"], ranking


def _newest(folder: str) -> str:
    return max(glob.glob(os.path.join(folder, "*")), key=lambda p: int(os.path.basename(p)))


def test_the_stock_evaluators_auc_per_request_is_the_auc_over_every_candidate(run):
    """TFMA computes every metric per request, AUC over each request's candidates flattened:
    that must be the AUC of all (held-out, other) candidate pairs, computed here from the
    Evaluator's own input examples and the holdout model's score_examples (ties count half),
    overall and in each gender's slice; and every request is counted in its activity band."""
    _, summary, out = run
    root = os.path.join(out, "pipeline_root")
    files = glob.glob(os.path.join(_newest(os.path.join(root, "CandidateExamples", "request_examples")),
                                   "Split-eval", "*"))
    model = tf.saved_model.load(os.path.join(
        _newest(os.path.join(root, "RecommenderAssembler", "holdout_model")), "Format-Serving"))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]
    scores = model.signatures["score_examples"](examples=tf.constant(serialized))["scores"].numpy()
    rows = records.read_columns(files, {
        candidates.GAIN: tf.io.FixedLenFeature([], tf.float32),
        candidates.REQUEST: tf.io.FixedLenFeature([], tf.string),
        features.GENDER: tf.io.FixedLenFeature([], tf.string),
        candidates.ACTIVITY: tf.io.FixedLenFeature([], tf.string)})

    def auc(mask):
        ranks, positive = rankdata(scores[mask]), rows[candidates.GAIN][mask] > 0
        p, n = positive.sum(), (~positive).sum()
        return (ranks[positive].sum() - p * (p + 1) / 2) / (p * n)

    # Within 1e-3, not exactly: the recommender scores a few near-tied items differently with
    # the batch it is handed, and TFMA's batches are not this one (bench/evaluator.py).
    tfma = summary["evaluation"]["tfma"]["slices"]
    everyone = np.ones(len(scores), bool)
    assert abs(tfma["Overall"]["auc"]["candidate"] - auc(everyone)) < 1e-3
    for gender in set(rows[features.GENDER]):
        mine = rows[features.GENDER] == gender
        assert abs(tfma[f"gender={gender}"]["auc"]["candidate"] - auc(mine)) < 1e-3, gender
    for band in set(rows[candidates.ACTIVITY]):
        requests = set(rows[candidates.REQUEST][rows[candidates.ACTIVITY] == band])
        assert tfma[f"activity={band}"]["example_count"]["candidate"] == len(requests), band


def test_the_served_order_is_the_one_the_ranking_trainer_chose(run, shared_run):
    """The ranking trainer's choice (its ranker, or retrieval's order where the ranker lost on
    the eval split) is the pushed model's setting and what its lists show: reordered from
    retrieval's top 10 where the ranker is used, retrieval's own where it is not (up to the
    dislike rule's removals). Checked on the pushed model, not on the trainer's figures."""
    config, summary, _ = run
    used = summary["ranking_training"]["ranker_used"]
    loaded = tf.saved_model.load(client.latest_version(config.push_dir))
    settings = json.loads(loaded.settings.numpy())
    assert settings["use_ranker"] == used
    # EASE's weight is the one the assembler chose on the eval split, and it changes lists.
    weight = summary["assembly"]["holdout"]["ease"]["weight"]
    assert settings["ease_weight"] == summary["assembly"]["deployed"]["ease"]["weight"] == weight
    assert (settings["popularity_weight"]
            == summary["assembly"]["holdout"]["popularity_prior"]["weight"])
    users = tf.constant(sorted(shared_run.future))
    served = loaded.signatures["serving_default"](user_id=users)["item_ids"].numpy().tolist()
    parts = recommender_servable.parts_of(loaded)
    alone = parts.build(dataclasses.replace(parts.rules, ease_weight=0.0))
    ranked = alone.recommend(users)["item_ids"].numpy().tolist()
    fused_same = sum(a == b for a, b in zip(served, ranked)) / len(served)
    assert (fused_same < 0.5) if weight else (fused_same == 1.0), (weight, fused_same)
    retrieved = loaded.signatures["retrieve"](user_id=users)["item_ids"].numpy().tolist()
    same = sum(a == b for a, b in zip(ranked, retrieved)) / len(ranked)
    # (Measured with the ranker used, seed 7: no list of 300 equals retrieval's.)
    assert (same < 0.5) if used else (same > 0.8), (used, same)


def test_serving_and_rerank_benchmarks_measure_the_pushed_model(run, tmp_path):
    _, summary, out = run
    root = os.path.dirname(out)  # the run's output and serving directories
    assert bench_serving.main(["--run-dir", str(root), "--catalogue", "25000", "--repeats", "20",
                               "--out", str(tmp_path / "serving")]) == 0
    rows = json.load(open(tmp_path / "serving" / "serving.json"))
    assert {(r["size"], r["servable"], r["flavour"]) for r in rows} == {
        ("movielens", "recommender", "exact"), ("movielens", "retrieval-only", "exact"),
        ("25,000", "recommender", "scann"), ("25,000", "retrieval-only", "scann")}
    assert {r["requests"] for r in rows} == {"single", "batch 32"}
    assert all(0 < r["p50"] <= r["p99"] for r in rows)
    assert "target movielens" in open(tmp_path / "serving" / "serving.txt").read()
    assert bench_rerank.main(["--run-dir", str(root), "--out", str(tmp_path / "rerank")]) == 0
    table = json.load(open(tmp_path / "rerank" / "rerank.json"))
    assert set(table) == set(bench_rerank.SETTINGS)
    # Without rules or EASE the servable's list is the ranked order the trainer scored: same
    # NDCG; with the default rules and EASE's weight, what the assembler measured choosing it.
    ranking = summary["ranking_training"]
    trained = ranking["eval_ndcg@10_ranked_order" if ranking["ranker_used"]
                      else "eval_ndcg@10_retrieval_order"]
    assert abs(table["ranked list alone"]["ndcg@10"] - trained) < 2e-3, (table, trained)
    chosen = summary["assembly"]["holdout"]["ease"]
    assert chosen["fitted"] and chosen["weight"] in EASE_WEIGHTS, chosen
    assert abs(table["default"]["ndcg@10"] - chosen["weight_tried"][str(chosen["weight"])]) < 2e-3
    # A strong diversity rule lowers intra-list similarity.
    assert (table["diversity 0.3"]["intra_list_similarity"]
            < table["no rules (fused list)"]["intra_list_similarity"])


@pytest.mark.slow
def test_pushed_exact_model_answers_every_signature_in_a_process_that_never_imports_scann(run):
    config, _, _ = run
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        model = tf.saved_model.load({client.latest_version(config.push_dir)!r})
        s = model.signatures
        users = tf.constant(["1", "nobody"])
        context = s["recommend_with_context"](
            user_id=users, age=tf.constant([0, 30], tf.int64), gender=tf.constant(["", "F"]),
            occupation=tf.constant(["", ""]), history=tf.constant([["2"], ["3"]]),
            exclude=tf.constant([["4"], ["no-such-item"]]), k=tf.constant(5))
        assert context["item_ids"].shape == (2, 5), context["item_ids"].shape
        assert context["unknown_items"].numpy().tolist() == [0, 1]
        assert s["retrieve"](user_id=users)["item_ids"].shape == (2, 10)
        assert s["rank"](user_id=users, item_ids=tf.constant([["2", "3"], ["5", "x"]]))[
            "scores"].shape == (2, 2)
        assert s["lookup_titles"](item_ids=tf.constant(["2"]))["titles"].shape == (1,)
        out = s["serving_default"](user_id=users)
        print(out["item_ids"].shape)
        assert "scann" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(2, 10)"


@pytest.fixture(scope="module")
def coarse_run(shared_run, tmp_path_factory):
    """A fork of the shared run with a coarse ScaNN index (1 of 20 leaves searched, no
    re-ordering) held to recall@100 0.999."""
    folder = tmp_path_factory.mktemp("coarse")
    config, out = fork(shared_run, folder, index=IndexConfig(
        flavour="scann", num_leaves=20, num_leaves_to_search=1, reordering_candidates=0,
        min_recall=0.999))
    return config, run_pipeline(config, out), out


def test_an_index_under_its_recall_threshold_blocks_the_push(coarse_run, shared_run):
    """The run completes, the index builder records why, nothing is pushed and the summary
    says so."""
    config, summary, _ = coarse_run
    index = summary["index"]
    assert index["flavour"] == "scann" and "20 leaves, 1 searched" in index["settings"]
    assert index["recall@100"] < 0.999 and index["blessed"] is False
    assert "< required 0.9990" in index["reason"]
    assert summary["evaluation"]["blessing"]["blessed"] is False
    assert summary["evaluation"]["blessing"]["index_blessed"] is False
    assert summary["pushed"] is False
    assert sorted(os.listdir(config.push_dir)) == sorted(os.listdir(shared_run.config.push_dir))
    # Upstream components came from the cache: only the index and what depends on it ran.
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert states["RetrievalTrainer"] == states["Transform"] == "CACHED", states
    assert states["IndexBuilder"] == states["RankingTrainer"] == "COMPLETE", states
    text = summary_lib.render(summary)
    # (The coarse index may also cost the model its own gate; then both reasons are given.)
    line = next(line for line in text.splitlines() if line.startswith("Not pushed: "))
    assert index["reason"] in line and line.endswith(". The served model is unchanged.")
    assert "NOT blessed" in text


def test_the_stock_pusher_takes_the_index_artifact_and_its_blessing(coarse_run, tmp_path):
    """The index builder's outputs as ML Metadata holds them, through TFX's own Pusher
    executor: the blessed index of the shared run is pushed in TF Serving's layout, the
    coarse run's unblessed one is not."""
    _, _, out = coarse_run
    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(os.path.join(out, "metadata.sqlite")))
    outputs = {name: [artifact_utils.deserialize_artifact(store.get_artifact_type(name), a)
                      for a in store.get_artifacts_by_type(name) if "/IndexBuilder/" in a.uri]
               for name in ("Model", "ModelBlessing")}
    destination = json_format.MessageToJson(pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "index"))))
    verdicts = []
    for blessing in outputs["ModelBlessing"]:
        index = next(m for m in outputs["Model"]
                     if m.uri == blessing.get_string_custom_property("current_model"))
        pushed = standard_artifacts.PushedModel()
        pushed.uri = str(tmp_path / "pushed" / os.path.basename(blessing.uri))
        pusher_executor.Executor().Do({"model": [index], "model_blessing": [blessing]},
                                      {"pushed_model": [pushed]},
                                      {"push_destination": destination})
        blessed = blessing.get_int_custom_property("blessed") == 1
        verdicts.append(blessed)
        assert pushed.get_int_custom_property("pushed") == int(blessed)
        if blessed:
            version = pushed.get_string_custom_property("pushed_destination")
            loaded = tf.saved_model.load(version)
            out = loaded.signatures["serving_default"](user_id=tf.constant(["1"]))
            assert out["item_ids"].shape == (1, 100)  # the index hands on `candidates` items
    assert sorted(verdicts) == [False, True]


def test_recommend_command_prints_titles(run, capsys, tmp_path):
    config, _, _ = run
    log = tmp_path / "requests.jsonl"
    assert cli.main(["recommend", "--user", "1", "--serving-dir", config.serving_dir,
                     "--request-log", str(log)]) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if re.match(r"\s*\d+\. ", line)]
    assert len(lines) == 10 and "(" in lines[0]  # titles carry their year
    # The request it sent, as TF Serving's REST API takes it, for a later run's skew check.
    sent = json.loads(log.read_text())
    assert (sent["signature_name"], sent["inputs"]) == ("serving_default", {"user_id": ["1"]})


def test_bad_data_stops_before_training_and_keeps_the_served_model(shared_run, tiny_data, tmp_path,
                                                                   capsys):
    config, out = fork(shared_run, tmp_path)
    before = sorted(os.listdir(config.push_dir))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken)
    with open(broken / "interactions.csv") as f:
        bad_line = sum(1 for _ in f) + 1
    with open(broken / "interactions.csv", "a") as f:
        f.write("1,2,not-a-time,4\n")
    bad = dataclasses.replace(config, data=DataConfig(data_dir=str(broken)))
    assert run_pipeline(bad, out, main=True) == 2
    message = capsys.readouterr().out
    assert f"interactions.csv:{bad_line}: field 'timestamp': 'not-a-time' is not an integer" in message
    assert sorted(os.listdir(config.push_dir)) == before


def test_a_rule_change_reassembles_and_pushes_with_both_trainers_from_the_cache(shared_run, tmp_path):
    """Business rules are applied by the assembler, not the trainers: a new diversity setting
    reruns assembly, evaluation and push; both trainers and the index come from the cache."""
    # Diversity trades some NDCG over the retrieved candidates (0.0116 on this data, beyond the
    # default 0.01 the stock Evaluator's change threshold allows): this change accepts 0.05.
    config, out = fork(shared_run, tmp_path)
    diverse = dataclasses.replace(
        config, rerank=dataclasses.replace(config.rerank, diversity=0.3),
        evaluation=dataclasses.replace(config.evaluation, max_ndcg_drop=0.05))
    before = sorted(os.listdir(config.push_dir))
    served = client.latest_version(config.push_dir)
    summary = run_pipeline(diverse, out)
    states = {c["component"]: c["state"] for c in summary["components"]}
    for cached in ("Transform", "RetrievalTrainer", "IndexBuilder", "RankingTrainer"):
        assert states[cached] == "CACHED", states
    # ServedModel reads the serving directory: never from the cache, though caching is on.
    for reran in ("RecommenderAssembler", "ServedModel", "CandidateExamples", "Evaluator",
                  "RecommenderEvaluator", "Pusher"):
        assert states[reran] == "COMPLETE", states
    # The served model is the baseline of both evaluators, scored on the same eval split.
    assert summary["baseline"]["version"] == os.path.basename(served)
    evaluation = summary["evaluation"]
    assert evaluation["served_version"] == os.path.basename(served)
    assert set(evaluation["metrics"]) == {"recommender", "retrieval_only", "popularity", "ease",
                                          "served"}
    verdict = evaluation["blessing"]
    assert verdict["served"] == evaluation["metrics"]["served"]["recall@10"] > 0
    assert "vs served model" in verdict["reasons"][1]
    ndcg = evaluation["tfma"]["slices"]["Overall"]["ndcg@10"]
    assert evaluation["tfma"]["validation"]["baseline"] is True
    assert ndcg["diff"] == pytest.approx(ndcg["candidate"] - ndcg["baseline"], abs=1e-6)
    assert summary["pushed"], verdict
    newest = client.latest_version(config.push_dir)
    assert os.path.basename(newest) not in before
    settings = json.loads(tf.saved_model.load(newest).settings.numpy())
    assert settings["rules"]["diversity"] == 0.3
    # The second report of the output directory compares its data with the first's.
    assert "Drift against the previous run" in open(summary["report"]).read()


def test_the_stock_evaluator_alone_blocks_a_push_whose_ndcg_falls(shared_run, tmp_path, capsys):
    """Near-pure diversity (0.9) reorders the lists far from relevance: NDCG@10 over the
    retrieved candidates falls beyond the stock Evaluator's change threshold (0.01; measured
    0.093 on the shared run's 100 sampled requests, 0.088 on all 300). The project's own gate
    is set to let it through (no lift over popularity, any drop vs the served model), so TFMA's
    verdict alone keeps the served model."""
    config, out = fork(shared_run, tmp_path)
    before = sorted(os.listdir(config.push_dir))
    reordered = dataclasses.replace(
        config, rerank=dataclasses.replace(config.rerank, diversity=0.9),
        evaluation=dataclasses.replace(config.evaluation, max_drop_vs_served=1.0,
                                       min_lift_over_popularity=0.0))
    assert run_pipeline(reordered, out, main=True) == 1
    printed = capsys.readouterr().out
    summary = json.load(open(os.path.join(out, "summary.json")))
    verdict = summary["evaluation"]["blessing"]
    validation = summary["evaluation"]["tfma"]["validation"]
    assert verdict["model_blessed"] is True and verdict["index_blessed"] is True
    assert verdict["tfma_blessed"] is False and validation["baseline"] is True
    assert not validation["ok"] and any("ndcg@10" in f for f in validation["failures"]), validation
    assert len(verdict["failures"]) == 1 and verdict["failures"][0].startswith(
        "stock Evaluator (TFMA) failed"), verdict["failures"]
    ndcg = summary["evaluation"]["tfma"]["slices"]["Overall"]["ndcg@10"]
    assert ndcg["candidate"] < ndcg["baseline"] - 0.01, ndcg
    assert summary["pushed"] is False and sorted(os.listdir(config.push_dir)) == before
    line = next(x for x in printed.splitlines() if x.startswith("Not pushed: "))
    assert "stock Evaluator (TFMA) failed" in line


def test_a_weak_model_pushes_nothing_and_the_summary_and_report_say_why(shared_run, tmp_path, capsys):
    """--epochs 0: untrained retrieval towers, and no second list (EASE's alone, fused in, lifts
    such a model past both gates). The gates refuse it; the served model stays."""
    config, out = fork(shared_run, tmp_path)
    before = sorted(os.listdir(config.push_dir))
    # (One ranking epoch: the ranker reruns on the weak candidates; what it learns is not checked.)
    weak = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, epochs=0),
                               ranking=dataclasses.replace(config.ranking, epochs=1),
                               rerank=dataclasses.replace(config.rerank, ease_weight=0.0,
                                                          popularity_weight=0.0))
    assert run_pipeline(weak, out, main=True) == 1
    printed = capsys.readouterr().out
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["retrieval_training"]["epochs_run"] == 0 and not summary["pushed"]
    verdict = summary["evaluation"]["blessing"]
    assert verdict["blessed"] is False and verdict["failures"]
    # It loses to the served model it was compared with, and to popularity.
    assert any("vs served model" in f and "beyond" in f for f in verdict["failures"])
    assert any("vs popularity" in f for f in verdict["failures"])
    assert sorted(os.listdir(config.push_dir)) == before
    line = next(x for x in printed.splitlines() if x.startswith("Not pushed: "))
    assert "vs served model" in line and line.endswith("The served model is unchanged.")
    page = open(summary["report"]).read()
    assert "Not pushed: " in page and "vs served model" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (make test installs it in CI)")
def test_the_report_renders_in_headless_chromium(run, tmp_path):
    from PIL import Image

    _, summary, out = run
    report = cli_report_path(out)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,2400"]
    shot = tmp_path / "report.png"
    done = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", f"file://{report}"],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2400)
    # Not blank: many shades (text, tables, coloured charts), and not all white.
    histogram = image.histogram()
    assert sum(1 for n in histogram if n) > 50 and histogram[255] < 0.97 * sum(histogram)
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{report}"], capture_output=True,
                         text=True, timeout=120).stdout
    recall = summary["evaluation"]["metrics"]["recommender"]["recall@10"]
    # The directory's first report: nothing to compare its data with yet.
    assert f"{recall:.4f}" in dom and "<svg" in dom and "no drift" in dom
    for heading in ("Verdict", "Data", "Training", "Held-out metrics", "Stock Evaluator (TFMA) slices",
                    "Index", "Example lists"):
        assert f">{heading}</h2>" in dom
    # Self-contained: nothing to fetch.
    assert not re.search(r"""(src|href)=["']?https?://""", dom)


def cli_report_path(output_dir) -> str:
    """The path ``recsys report`` prints."""
    result = subprocess.run([sys.executable, "-m", "cli", "report", "--output-dir", str(output_dir)],
                            capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_run_killed_while_the_pusher_copies_leaves_only_complete_versions_and_the_rerun_pushes(
        shared_run, tmp_path):
    """SIGKILL of the whole run's process group once the Pusher's copy has begun (its
    ``incoming-`` folder exists): every numbered version is complete; the rerun pushes the
    next version.

    The killed run's copy pauses before its last file (``saved_model.pb``): copying a model
    this small takes a few milliseconds, which a poll can miss (CI on f814b71 saw the run
    finish and push). The pause holds the copy where a kill hurts most, all of the model but
    its marker written; the kill and the recovery are real."""
    import signal
    import time

    # Nothing changed but the serving directory (the fork's own): the cache gives every step up
    # to the model, the served-model gates run against the shared run's pushed model (the same
    # model: blessed), and the Pusher publishes it again as the next version.
    config, out = fork(shared_run, tmp_path)
    before = client.latest_version(config.push_dir)
    log = open(tmp_path / "killed.log", "w")
    pause = """
        import time
        from recommender import versions
        _copy = versions._copy
        def _paused_copy(source, target, before_marker=None):
            def pause():
                if before_marker is not None:
                    before_marker()
                time.sleep(900)  # killed here
            _copy(source, target, before_marker=pause)
        versions._copy = _paused_copy
    """
    proc = pipeline_process(config, out, prelude=pause, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    copying = None
    deadline = time.time() + 900
    while proc.poll() is None and time.time() < deadline:
        copying = [n for n in os.listdir(config.push_dir) if n.startswith("incoming-")]
        if copying:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait(timeout=60)
    log.close()
    assert copying and proc.returncode == -signal.SIGKILL, open(tmp_path / "killed.log").read()[-3000:]
    time.sleep(0.5)
    assert not os.path.exists(os.path.join(config.push_dir, copying[0], "saved_model.pb"))
    names = [n for n in os.listdir(config.push_dir) if n != push_lock.LOCK_NAME]
    for name in names:
        if name.isdigit():
            assert os.path.exists(os.path.join(config.push_dir, name, "saved_model.pb")), names
        else:
            assert name.startswith("incoming-"), names
    rerun = pipeline_process(config, out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    printed = rerun.communicate(timeout=900)[0]
    assert rerun.returncode == 0, printed[-3000:]
    after = [n for n in os.listdir(config.push_dir) if n != push_lock.LOCK_NAME]
    assert not [n for n in after if not n.isdigit()], after
    assert int(os.path.basename(client.latest_version(config.push_dir))) > int(os.path.basename(before))


def test_two_whole_runs_pushing_into_one_serving_directory_both_publish_complete_versions(
        shared_run, tmp_path):
    """Two `recsys run`s (forks of the shared run: each its own output directory) started
    together with one serving directory, as a scheduled run and a manual one would be: both
    push, one after the other, and every numbered version is complete and loads."""
    serving = tmp_path / "serving"
    shutil.copytree(shared_run.config.serving_dir, serving)
    procs, logs = [], []
    for name in ("scheduled", "manual"):
        config, out = fork(shared_run, tmp_path / name)
        logs.append(open(tmp_path / f"{name}.log", "w"))
        procs.append(pipeline_process(dataclasses.replace(config, serving_dir=str(serving)), out,
                                      stdout=logs[-1], stderr=subprocess.STDOUT))
    for proc, log in zip(procs, logs):
        proc.wait(timeout=1200)
        log.close()
    texts = [open(tmp_path / f"{name}.log").read() for name in ("scheduled", "manual")]
    assert [p.returncode for p in procs] == [0, 0], [t[-2000:] for t in texts]
    base = dataclasses.replace(shared_run.config, serving_dir=str(serving)).push_dir
    assert client.latest_version(base) and sorted(
        n for n in os.listdir(base) if n != push_lock.LOCK_NAME) == ["1", "2", "3"]
    for version in ("1", "2", "3"):
        model = tf.saved_model.load(os.path.join(base, version))
        assert "serving_default" in model.signatures


def test_sigterm_during_training_reports_what_completed_and_releases_the_lock(shared_run, tmp_path):
    """SIGTERM to the run (only its main process, as `kill PID` or Kubernetes sends it) while
    the ranking trainer trains: it exits 128 + 15 printing the components that completed, the
    signal and the log path; its output directory's lock is free and the served model is as
    it was."""
    import fcntl
    import signal
    import time

    config, out = fork(shared_run, tmp_path)
    config = dataclasses.replace(config, ranking=dataclasses.replace(config.ranking, epochs=3))
    served = sorted(os.listdir(config.push_dir))
    proc = pipeline_process(config, out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.match(r"\s+RankingTrainer\s+started", line):
            time.sleep(1.0)  # inside training, not at its first line
            sent = time.time()
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=300)
    took = time.time() - sent
    text = "".join(lines) + rest
    assert proc.returncode == 128 + signal.SIGTERM, text[-3000:]
    assert "error: interrupted by signal 15 (SIGTERM)" in text, text[-3000:]
    log_path = re.search(r"The whole log: (\S+)", text).group(1)
    assert os.path.exists(log_path) and log_path.startswith(out)
    # What completed: the summary names the components that ran before the signal.
    assert re.search(r"RetrievalTrainer", rest) and "Not pushed: the run failed" in rest, rest
    assert json.load(open(os.path.join(out, "summary.json")))["failed"].startswith(
        "interrupted by signal 15")
    with open(os.path.join(out, "run.lock"), "a+") as handle:  # free: no BlockingIOError
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert sorted(os.listdir(config.push_dir)) == served
    print(f"exited {took:.1f} s after SIGTERM")


@pytest.fixture(scope="module")
def hazard_run(ml100k_hazards, tmp_path_factory):
    root = tmp_path_factory.mktemp("hazards")
    config = PipelineConfig(serving_dir=str(root / "serving"), top_k=10, beam_args=IN_PROCESS,
                            data=DataConfig(data_dir=ml100k_hazards),
                            retrieval=RetrievalConfig(learning_rate=0.005, epochs=4),
                            ranking=RankingConfig(epochs=1), evaluation=EvalConfig(requests=EVAL_REQUESTS))
    return config, run_pipeline(config, root / "out"), str(root / "out")


def test_every_trained_id_of_the_hazards_is_in_transforms_vocabularies(hazard_run):
    """No id silently lost: every user and item id of the train split the ExampleGen wrote
    (accented, large, the 'unknown' item) is in Transform's vocabularies, byte for byte."""
    import glob

    import tensorflow_transform as tft

    from models import records

    _, summary, out = hazard_run
    root = os.path.join(out, "pipeline_root")
    train = records.read_columns(glob.glob(os.path.join(
        root, "InteractionsExampleGen", "examples", "*", "Split-train", "*")))
    (graph,) = glob.glob(os.path.join(root, "Transform", "transform_graph", "*"))
    output = tft.TFTransformOutput(graph)
    for vocab, field in ((features.USER_VOCAB, features.USER_ID),
                         (features.ITEM_VOCAB, features.ITEM_ID)):
        kept = {v.decode("utf-8") for v in output.vocabulary_by_name(vocab)}
        given = set(train[field])
        assert len(given) > 100 and given <= kept, sorted(given - kept)[:5]
    assert {"zoë-71", "rené-72"} <= set(train[features.USER_ID])


def test_ml100k_layout_with_real_world_hazards_serves_every_user(hazard_run, ml100k_hazards, capsys):
    """Latin-1 accents, large ids, the 'unknown' item, one-interaction users and a user
    whose interactions share a second: the run pushes, and every user's list through
    serving_default holds catalogue items they never interacted with, titles intact."""
    config, summary, _ = hazard_run
    assert summary["pushed"], summary_lib.render(summary)
    model, ds = serves_every_user(config.push_dir, ml100k_hazards)
    titles = model.signatures["lookup_titles"](
        item_ids=tf.constant(["90013", "99999267", ACCENTED_ITEM]))["titles"]
    assert [t.decode("utf-8") for t in titles.numpy()] == ["Misérables, Les (1995)", "unknown",
                                                            "Crème brûlée (1999)"]
    # Accented ids went through Transform's vocabularies and the index as UTF-8: the users are
    # known (their lists differ from the unknown user's popularity list), the item is scored.
    known = model.signatures["serving_default"](user_id=tf.constant(["zoë-71", "rené-72", "nobody"]))
    rows = [[i.decode("utf-8") for i in row] for row in known["item_ids"].numpy()]
    assert rows[0] != rows[2] and rows[1] != rows[2]
    scores = model.signatures["rank"](user_id=tf.constant(["zoë-71"]),
                                      item_ids=tf.constant([[ACCENTED_ITEM, "no-such-item"]]))["scores"]
    assert np.isfinite(scores.numpy()[0, 0]) and not np.isfinite(scores.numpy()[0, 1])
    assert cli.main(["recommend", "--user", "700007", "--history", "90013",
                     "--serving-dir", config.serving_dir]) == 0
    printed = capsys.readouterr().out
    assert len([line for line in printed.splitlines() if re.match(r"\s*\d+\. ", line)]) == 10


def test_the_next_days_span_starts_from_the_served_model_and_pushes(shared_run, tmp_path):
    """The next day: the shared run's data as span-1 and each user's later interactions as
    span-2. The run reads both spans, starts its retrieval models from the served version (the
    shared run's push: every item and user row it knew carried over) and its ranker from the
    served ranker, stops early after one epoch without gain, and pushes a version that carries
    its own states for the day after."""
    from models.data import splits, writer

    inter = shared_run.dataset.interactions
    later = splits.temporal_split(inter, 0.2)[features.EVAL]
    root = tmp_path / "data"
    os.makedirs(root)
    os.symlink(shared_run.config.data.data_dir, root / "span-1")
    writer.write_canonical(str(root / "span-2"), [
        (inter[features.USER_ID][i], inter[features.ITEM_ID][i], inter[features.TIMESTAMP][i],
         inter[features.RATING][i]) for i in later], shared_run.dataset.users, shared_run.dataset.items)
    # The day's served requests: each user of span-2 asking once with their stored demographics.
    log = str(tmp_path / "requests.jsonl")
    for user in sorted(set(inter[features.USER_ID][i] for i in later)):
        stored = shared_run.dataset.users.get(user, {})
        request_log.append(log, *request_inputs(user, None, int(stored.get("age") or 0),
                                                stored.get("gender", ""), stored.get("occupation", "")))
    config, out = fork(shared_run, tmp_path / "next",
                       data=dataclasses.replace(shared_run.config.data, data_dir=str(root),
                                                request_log=log))
    summary = run_pipeline(config, out)
    assert summary["spans"] == ["span-1", "span-2"]
    served = os.path.basename(client.latest_version(shared_run.config.push_dir))
    assert summary["warm_start_from"] == served
    training = summary["retrieval_training"]
    started = training["warm_start"]["holdout"]
    assert started["warm"] is True and training["warm_start"]["deployed"]["warm"] is True
    for vocabulary in (features.ITEM_VOCAB, features.USER_VOCAB):
        assert started["vocabularies"][vocabulary]["gone"] == 0  # the window holds span-1
        assert started["vocabularies"][vocabulary]["kept"] > 0
    assert 0 < started["recall_before_training"] < 1
    assert training["epochs_run"] <= max(training["best_epoch"], 1) + 1
    assert summary["pushed"], summary["evaluation"]["blessing"]
    pushed = client.latest_version(config.push_dir)
    assert os.path.basename(pushed) != served
    assert sorted(os.listdir(os.path.join(pushed, "assets.extra", "warm_start"))) == [
        "deployed", "holdout", "learned_from.json"]
    # The ranker started from the served one, since the retrieval model it ranks for did.
    ranking = summary["ranking_training"]["warm_start"]["holdout"]
    assert ranking == {"warm": True, "epochs": config.ranking.warm_epochs}
    assert sorted(os.listdir(os.path.join(pushed, "assets.extra", "warm_start", "holdout"))) == [
        "ranker.npz", "retrieval.json", "retrieval.npz"]
    assert summary_lib.warm_start_line(summary).startswith(f"Warm start from served version {served}")
    # The new span's data against what the served model learned from: measured, within the gate.
    train = {row["feature"]: row for row in summary["drift"]["splits"][features.TRAIN]}
    assert {"gender", "occupation", "item_id", "age", "year", "rating"} <= set(train)
    assert all(0 <= row["distance"] <= row["threshold"] for row in train.values())
    assert train["item_id"]["distance"] > 0  # each user's later interactions are other items
    # The requests against the train split: measured for every feature with a skew comparator.
    skewed = {row["feature"]: row for row in summary["drift"]["skew"]["rows"]}
    assert set(skewed) == {"age", "gender", "occupation"}
    assert all(0 < row["distance"] <= row["threshold"] for row in skewed.values()), skewed
    assert summary_lib.skew_line(summary).startswith("Serving skew (TFDV, ")
