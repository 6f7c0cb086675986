"""Level 1: readers, validation errors, splits and the synthetic dataset."""

import io
import os
import shutil
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from models import arrays, features, records
from models.data import download, examples, layouts, readers, splits, synthetic, writer
from models.data.beam import files as data_files
from models.data.errors import DataError
from models.evaluation import metrics
from tests.support import BROKEN_FILES, BROKEN_IDS, WIDE_FILES, write


def test_canonical_layout_read_with_defaults(canonical):
    ds = readers.read_dataset(canonical)
    assert ds.layout == readers.CANONICAL
    assert ds.interactions[features.USER_ID] == ["1", "1", "2", "2"]
    assert ds.interactions[features.RATING] == [5.0, 3.0, 4.0, 0.0]  # empty rating -> 0 (no explicit rating)
    assert ds.users["2"] == {features.AGE: 0, features.GENDER: "M", features.OCCUPATION: ""}
    assert ds.items["12"][features.TITLE] == "Crash, The (1996)"  # quoted comma
    assert ds.items["10"][features.GENRES] == ("Action", "Crime")
    assert "13" in ds.items  # catalogue items without interactions are kept


def test_ml100k_layout(ml100k):
    ds = readers.read_dataset(ml100k)
    assert ds.layout == readers.ML_100K
    assert len(ds) == 4
    assert ds.items["1"] == {features.TITLE: "Toy Story (1995)", features.GENRES: ("Animation", "Comedy"),
                             features.YEAR: 1995, features.TAGS: ()}
    assert ds.items["3"][features.TITLE] == "Am\xe9lie" and ds.items["3"][features.YEAR] == 2001
    assert ds.users["2"] == {features.AGE: 53, features.GENDER: "F", features.OCCUPATION: "other"}
    assert ds.interactions[features.TIMESTAMP][0] == 874965758


def test_ml1m_layout(ml1m):
    ds = readers.read_dataset(ml1m)
    assert ds.layout == readers.ML_1M
    assert ds.items["661"][features.GENRES] == ("Animation", "Children's", "Musical")
    assert ds.items["661"][features.YEAR] == 1996
    assert ds.items["2"][features.TITLE] == "Caf\xe9 (1990)"
    assert ds.users["1"] == {features.AGE: 1, features.GENDER: "F", features.OCCUPATION: "10"}


def test_unknown_layout_names_what_it_expects(tmp_path):
    write(tmp_path, "ratings.csv", "a,b\n")
    with pytest.raises(DataError, match="no known layout.*interactions.csv"):
        readers.read_dataset(str(tmp_path))




@pytest.mark.parametrize("name,content,message", BROKEN_FILES,
                         ids=BROKEN_IDS)
def test_broken_file_stops_with_where_and_what(canonical, name, content, message):
    write(canonical, name, content)
    with pytest.raises(DataError, match=message):
        readers.read_dataset(canonical)


def test_non_utf8_file(canonical):
    with open(os.path.join(canonical, "items.csv"), "wb") as f:
        f.write(b"item_id,title\n10,Heat\n11,Am\xe9lie\n")
    with pytest.raises(DataError, match=r"items.csv:3: not valid utf-8 .*0xe9"):
        readers.read_dataset(canonical)


def test_bad_rows_within_fraction_are_skipped_and_reported(canonical):
    rows = "".join(f"1,10,{t}\n" for t in range(100, 120))
    write(canonical, "interactions.csv", "user_id,item_id,timestamp\n" + rows + "1,10,oops\n1,99,5\n")
    with pytest.raises(DataError, match="2 of 22 row"):
        readers.read_dataset(canonical, max_bad_fraction=0.05)
    ds = readers.read_dataset(canonical, max_bad_fraction=0.1)
    assert len(ds) == 20
    skipped = [(r.line, r.field) for r in ds.report.skipped]
    assert skipped == [(22, features.TIMESTAMP), (23, features.ITEM_ID)]
    assert "skipped 2 invalid row(s)" in ds.report.summary()


def test_missing_side_tables_are_derived(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\na,x,1\nb,y,2\n")
    ds = readers.read_dataset(str(tmp_path))
    assert set(ds.users) == {"a", "b"} and set(ds.items) == {"x", "y"}
    assert ds.items["x"] == {features.TITLE: "", features.GENRES: (), features.YEAR: 0,
                             features.TAGS: ()}


def test_per_user_temporal_split():
    inter = {features.USER_ID: ["a"] * 5 + ["b"] * 2 + ["c"],
             features.TIMESTAMP: [5, 1, 4, 2, 3, 10, 20, 7]}
    out = splits.temporal_split(inter, 0.4, "per_user")
    # a: 5 events, round(2.0) = 2 latest (t=4, 5); b: max(1, round(0.8)) = 1 latest; c alone stays in train.
    assert sorted(out[features.EVAL].tolist()) == [0, 2, 6]
    assert sorted(out[features.TRAIN].tolist()) == [1, 3, 4, 5, 7]


def test_histories_are_the_users_earlier_items_latest_kept():
    inter = {features.USER_ID: ["a", "a", "b", "a", "a", "a"],
             features.ITEM_ID: ["i1", "i2", "j1", "i3", "i4", "i5"],
             features.TIMESTAMP: [30, 10, 5, 20, 20, 40]}
    histories = splits.Histories(inter, max_length=2)
    # a in time: i2 (10), i3 (20), i4 (20, later row), i1 (30), i5 (40).
    assert histories.of(1) == []
    assert histories.of(3) == ["i2"]
    assert histories.of(4) == ["i2", "i3"]
    assert histories.of(0) == ["i3", "i4"]  # the latest two only, oldest first
    assert histories.of(5) == ["i4", "i1"]
    assert histories.of(2) == []  # b's own, never a's


def test_global_temporal_split_is_later_than_train():
    rng = np.random.default_rng(0)
    inter = {features.USER_ID: [str(u) for u in rng.integers(0, 10, 200)],
             features.TIMESTAMP: rng.integers(0, 10_000, 200).tolist()}
    out = splits.temporal_split(inter, 0.25, "global")
    ts = np.array(inter[features.TIMESTAMP])
    assert ts[out[features.TRAIN]].max() <= ts[out[features.EVAL]].min()
    assert 0.2 < len(out[features.EVAL]) / 200 < 0.3
    with pytest.raises(ValueError, match="split strategy"):
        splits.temporal_split(inter, 0.2, "random")


def test_synthetic_is_deterministic_and_movielens_shaped():
    a = synthetic.generate(num_users=200, num_items=300, num_interactions=10_000, seed=5)
    b = synthetic.generate(num_users=200, num_items=300, num_interactions=10_000, seed=5)
    assert a == b
    assert 9_000 < len(a["interactions"]) < 12_000
    counts = np.bincount([int(i) for _, i, _, _ in a["interactions"]])
    # Popularity skew: uniform sampling would put the busiest item near 1.5x the median.
    assert counts.max() > 4 * np.median(counts[counts > 0])


def test_synthetic_rewards_learning_and_punishes_guessing(tmp_path):
    """EASE (learns co-occurrence) beats popularity clearly; random guessing loses to it."""
    folder = synthetic.write_canonical(str(tmp_path), num_users=943, num_items=1682,
                                       num_interactions=100_000, seed=7)
    ds = readers.read_dataset(folder)
    idx = splits.temporal_split(ds.interactions, 0.2)
    users, items = np.array(ds.interactions[features.USER_ID]), np.array(ds.interactions[features.ITEM_ID])
    seen = metrics.group_by_user(users[idx[features.TRAIN]], items[idx[features.TRAIN]])
    held = metrics.group_by_user(users[idx[features.EVAL]], items[idx[features.EVAL]])
    pop = metrics.popularity_recommendations(metrics.popularity_ranking(items[idx[features.TRAIN]]), seen,
                                             held, 10)
    ease = metrics.ease_recommendations(seen, held, 10)
    rng = np.random.default_rng(0)
    catalogue = sorted(ds.items)
    rand = {u: list(rng.choice(catalogue, 10, replace=False)) for u in held}
    recall = {name: metrics.mean_metrics(r, held, [10], len(catalogue))["recall@10"]
              for name, r in [("pop", pop), ("ease", ease), ("rand", rand)]}
    assert recall["ease"] > 1.5 * recall["pop"]
    assert recall["rand"] < 0.5 * recall["pop"]


def test_a_wider_popularity_spread_gives_a_longer_tail():
    counts = {}
    for spread in (1.1, 2.0):
        data = synthetic.generate(num_users=300, num_items=3000, num_interactions=30_000, seed=7,
                                  popularity_spread=spread)
        per_item = np.bincount([int(i) for _, i, _, _ in data["interactions"]], minlength=3001)[1:]
        counts[spread] = per_item
    # Items interacted with twice or less: a long tail is most of the catalogue's mass of items.
    assert np.mean(counts[2.0] <= 2) > 1.5 * np.mean(counts[1.1] <= 2)
    assert np.median(counts[2.0]) < np.median(counts[1.1])


def test_a_catalogue_without_user_features_is_written_and_read_back_without_a_user_file(tmp_path):
    folder = synthetic.write_canonical(str(tmp_path / "data"), user_features=False, num_users=30,
                                       num_items=60, num_interactions=900)
    assert sorted(os.listdir(folder)) == ["GENERATED_WITH", "interactions.csv", "items.csv"]
    dataset = readers.read_dataset(folder)
    assert all(values == layouts.UNKNOWN_USER for values in dataset.users.values())
    # A part of it written again (the quality benchmark's given part) has no user file either,
    assert "users.csv" not in os.listdir(writer.write_canonical(
        str(tmp_path / "part"), [], dataset.users, dataset.items))
    # while a dataset with demographics keeps them.
    with_users = synthetic.write_canonical(str(tmp_path / "with"), num_users=30, num_items=60,
                                           num_interactions=900)
    known = readers.read_dataset(with_users)
    part = writer.write_canonical(str(tmp_path / "part2"), [], known.users, known.items)
    with open(os.path.join(part, "users.csv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 31


def _download_served(tmp_path, folder, name):
    """``download(name)`` from a file:// folder serving ``folder`` zipped as GroupLens does."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in os.listdir(folder):
            archive.write(os.path.join(folder, file), f"{name}/{file}")
    served = tmp_path / "server"
    served.mkdir(exist_ok=True)
    (served / f"{name}.zip").write_bytes(buffer.getvalue())
    return download.download(name, str(tmp_path / "dest"), base_url=served.as_uri())


def test_download_unpacks_a_grouplens_zip(tmp_path, ml100k):
    folder = _download_served(tmp_path, ml100k, "ml-100k")
    assert readers.detect_layout(folder) == readers.ML_100K
    assert len(readers.read_dataset(folder)) == 4
    with pytest.raises(ValueError, match="unknown dataset"):
        download.download("ml-7m", str(tmp_path))


def test_download_unpacks_a_current_grouplens_release(tmp_path, ml_latest):
    folder = _download_served(tmp_path, ml_latest, "ml-latest-small")
    assert readers.detect_layout(folder) == readers.ML_LATEST
    assert sorted(os.listdir(folder)) == sorted(os.listdir(ml_latest))


# --- real-world shape: encodings, CSV quoting, schema domains, duplicates ---


def test_utf8_byte_order_mark_and_quoted_newlines(canonical):
    """Excel's "CSV UTF-8" starts with a BOM; a quoted field may hold a newline, and the
    lines named in errors stay those an editor shows."""
    write(canonical, "items.csv", "\ufeffitem_id,title,genres,year\n10,\"Two\nLines, Really\",Drama,1995\n"
                                  "11,Up,Animation,\n12,x,,1996\n13,y,,\n")
    write(canonical, "users.csv", "\ufeffuser_id,age,gender,occupation\n1,25,F,writer\n2,,M,\n")
    ds = readers.read_dataset(canonical)
    assert ds.items["10"][features.TITLE] == "Two\nLines, Really"
    write(canonical, "items.csv", "item_id,title,genres,year\n10,\"Two\nLines\",Drama,1995\n"
                                  "11,Up,Animation,soon\n12,x,,\n")
    with pytest.raises(DataError, match=r"items.csv:4: field 'year': 'soon' is not an integer"):
        readers.read_dataset(canonical)


def test_non_ascii_ids_and_text_survive_reading_and_examples(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\njosé,映画-1,100\njosé,🎬,200\n"
                                        "ülla,映画-1,150\n")
    write(tmp_path, "users.csv", "user_id,age,gender,occupation\njosé,30,F,ingeniería\nülla,20,M,\n")
    write(tmp_path, "items.csv", "item_id,title,genres,year\n映画-1,千と千尋の神隠し (2001),Animación,2001\n"
                                 "🎬,\"Misérables, Les (1995)\",Drama,1995\n")
    ds = readers.read_dataset(str(tmp_path))
    assert ds.users["josé"][features.OCCUPATION] == "ingeniería"
    assert ds.items["🎬"][features.TITLE] == "Misérables, Les (1995)"
    path = str(tmp_path / "items.tfrecord.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as f:
        for record in examples.catalogue_examples(ds):
            f.write(record)
    columns = records.read_columns([path], {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
                                       features.TITLE: tf.io.FixedLenFeature([], tf.string)})
    assert sorted(columns[features.ITEM_ID]) == sorted(ds.items)
    assert "千と千尋の神隠し (2001)" in list(columns[features.TITLE])
    assert list(arrays.to_str(arrays.to_bytes(columns[features.ITEM_ID]))) == list(columns[features.ITEM_ID])


@pytest.mark.parametrize("name,content,message", [
    ("users.csv", "user_id,age,gender,occupation\n1,200,F,writer\n2,30,M,\n",
     r"users.csv:2: field 'age': 200 is outside \[0, 130\], the range the schema "
     r"\(schemas/interactions/schema.pbtxt\) allows"),
    ("interactions.csv", "user_id,item_id,timestamp\n1,10,100\n2,10,-5\n",
     r"interactions.csv:3: field 'timestamp': -5 is outside \[0, 4102444800\]"),
    ("interactions.csv", "user_id,item_id,timestamp,rating\n1,10,100,inf\n",
     r"interactions.csv:2: field 'rating': 'inf' is not a finite non-negative number"),
    ("interactions.csv", "user_id,item_id,timestamp\n1,10,100\n1,11,200,9\n",
     r"interactions.csv:3: field 'column 4': the row has 4 field\(s\), the header has 3; quote values"),
], ids=["age-200", "negative-time", "inf-rating", "extra-cell"])
def test_values_the_schema_or_layout_refuses_are_named(canonical, name, content, message):
    write(canonical, name, content)
    with pytest.raises(DataError, match=message):
        readers.read_dataset(canonical)


@pytest.mark.parametrize("name,line", [("u.item", "2|Copy|01-Jan-1995||http://x|" + "0|" * 18 + "1\n"),
                                       ("u.user", "1|30|F|other|T8H1N\n")])
def test_ml100k_duplicate_ids_are_named(ml100k, name, line):
    with open(os.path.join(ml100k, name), "a", encoding="latin-1") as f:
        f.write(line)
    with pytest.raises(DataError, match=rf"{name}:4: field '(item|user)_id': id '(2|1)' already listed "
                                        rf"on line (2|1)"):
        readers.read_dataset(ml100k)


def test_ml1m_duplicate_movie_and_extra_field_are_named(ml1m):
    with open(os.path.join(ml1m, "movies.dat"), "a", encoding="latin-1") as f:
        f.write("661::Again (1996)::Drama\n")
    with pytest.raises(DataError, match=r"movies.dat:4: field 'item_id': id '661' already listed on line 2"):
        readers.read_dataset(ml1m)
    write(ml1m, "movies.dat", "1193::One (1975)::Drama::extra\n661::Two (1996)::Drama\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"movies.dat:1: field 'column 4': the row has 4 field\(s\), "
                                        r"this layout has 3"):
        readers.read_dataset(ml1m)


def test_equal_timestamps_are_read_with_a_warning(canonical):
    write(canonical, "interactions.csv", "user_id,item_id,timestamp\n1,10,5\n1,11,5\n2,10,5\n")
    ds = readers.read_dataset(canonical)
    assert "all 3 interactions have the same timestamp" in ds.report.summary()
    assert ds.report.to_dict()["warnings"]


def test_ml100k_hazard_fixture_reads_as_real_data_would(ml100k_hazards):
    ds = readers.read_dataset(ml100k_hazards)
    assert ds.layout == readers.ML_100K
    assert "Misérables, Les (1995)" in {item[features.TITLE] for item in ds.items.values()}
    unknown = ds.items["99999267"]
    assert unknown == {features.TITLE: "unknown", features.GENRES: ("unknown",), features.YEAR: 0,
                       features.TAGS: ()}
    assert ds.users["800000"][features.AGE] == 30
    never = set(ds.items) - set(ds.interactions[features.ITEM_ID])
    assert {"99999300", "99999301"} <= never


def test_ml_latest_layout_reads_as_grouplens_ships_it(ml_latest):
    ds = readers.read_dataset(ml_latest)
    assert ds.layout == readers.ML_LATEST
    # Half stars; every rating of ratings.csv, of 150 users; every movie of movies.csv, rated or not.
    lines = open(os.path.join(ml_latest, "ratings.csv"), encoding="utf-8").read().count("\n")
    assert 2.5 in set(ds.interactions[features.RATING]) and len(ds) == lines - 1 > 6_000
    assert len(ds.users) == 150 and len(ds.items) == 303
    titles = {item[features.TITLE]: item for item in ds.items.values()}
    assert titles["American President, The (1995)"][features.YEAR] == 1995
    assert titles['"Great Performances" Cats (1998)'][features.YEAR] == 1998
    assert titles["千と千尋の神隠し (2001)"][features.YEAR] == 2001
    assert titles["Hyena Road (2015)"][features.YEAR] == 2015  # the trailing space trimmed
    assert titles["Black Mirror"][features.YEAR] == 0  # no year in the title: unknown
    assert titles["Babylon 5 (1994–1998)"][features.YEAR] == 0  # a range is not one year
    # '(no genres listed)' is no genre, not a genre of its own.
    assert all("(no genres listed)" not in item[features.GENRES] for item in ds.items.values())
    assert sum(not item[features.GENRES] for item in ds.items.values()) == 6
    # No user file: every user is known by id and history alone.
    assert all(user == {features.AGE: 0, features.GENDER: "", features.OCCUPATION: ""}
               for user in ds.users.values())
    never = set(ds.items) - set(ds.interactions[features.ITEM_ID])
    assert {"200000", "200001", "200002"} <= never
    # tags.csv is item text: each tag once, case and spacing ignored, the most given first.
    first, second = ds.items["1097"], ds.items["1194"]
    assert first[features.TAGS][:2] == ("pixar", "time travel")
    assert {"Studio Ghibli 宮崎", "Ça va"} <= set(first[features.TAGS])
    assert second[features.TAGS][0] in ("dark", "funny, dark")
    assert ds.items["200001"][features.TAGS] == ("never rated",)  # unrated, still described
    assert sum(bool(item[features.TAGS]) for item in ds.items.values()) < 60  # most have none
    # What a run knows before reading rows: the layout, its files (tags.csv's header checked
    # too)... and no user file.
    found = data_files.survey(ml_latest)
    assert (found["layout"], found["absent"], found["items"]) == (readers.ML_LATEST, ["users"], 303)
    assert os.path.join(ml_latest, "tags.csv") in found["sizes"]


def test_item_tags_count_each_tag_once_whatever_its_case_and_keep_the_most_given():
    assert layouts.item_tags(["dark", " Dark", "funny", "DARK ", "", "  ", "a  b", "a b"]) == (
        "dark", "a b", "funny")
    many = [f"tag{n:02d}" for n in range(30) for _ in range(30 - n)]
    assert layouts.item_tags(many) == tuple(f"tag{n:02d}" for n in range(features.MAX_TAGS))


def test_canonical_items_carry_tags_and_write_them_back(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\n1,a,5\n")
    many = "|".join(["Cult", "cult"] + [f"t{n}" for n in range(30)])
    write(tmp_path, "items.csv", "item_id,title,genres,year,tags\na,A (1990),Drama,1990,"
                                 f"cult|Ça va\nb,B,,,\nc,C,,,{many}\n")
    ds = readers.read_dataset(str(tmp_path))
    assert ds.items["a"][features.TAGS] == ("cult", "Ça va") and ds.items["b"][features.TAGS] == ()
    # As given, each once, at most MAX_TAGS (what the schema allows an item).
    assert ds.items["c"][features.TAGS] == ("Cult",) + tuple(f"t{n}" for n in range(19))
    again = readers.read_dataset(writer.write_canonical(str(tmp_path / "again"), [("1", "a", 5, 0.0)],
                                                        ds.users, ds.items))
    assert again.items == ds.items


def test_ml_latest_errors_name_the_files_own_columns(ml_latest, tmp_path):
    for name in ("ratings.csv", "movies.csv", "tags.csv", "links.csv"):
        shutil.copy(os.path.join(ml_latest, name), tmp_path / name)
    with open(tmp_path / "ratings.csv", "a", encoding="utf-8") as f:
        f.write("7,1097,4.0,not-a-time\n")
    last = open(tmp_path / "ratings.csv", encoding="utf-8").read().count("\n")
    with pytest.raises(DataError, match=rf"ratings\.csv:{last}: field 'timestamp': 'not-a-time'"):
        readers.read_dataset(str(tmp_path))
    write(tmp_path, "ratings.csv", "user,movieId,rating,timestamp\n1,1097,4.0,1\n")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['userId'\]"):
        readers.read_dataset(str(tmp_path))


def test_examples_written_byte_by_byte_equal_protobufs_deterministic_serialization():
    """models/wire.py joins the ExampleGens' bytes itself; they must be what protobuf writes."""
    from models import wire

    rng = np.random.default_rng(0)
    texts = ["", "a", "Misérables, Les (1995)", "千と千尋", "🎬", "x" * 200]
    for _ in range(300):
        names = rng.choice(["user_id", "title", "genres", "year", "rating", "history", "é"],
                           size=rng.integers(1, 7), replace=False)
        proto, raw = {}, {}
        for name in names:
            kind = rng.integers(3)
            if kind == 0:
                values = [str(rng.choice(texts)).encode("utf-8") for _ in range(rng.integers(0, 60))]
                proto[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
                raw[name] = wire.bytes_list(values)
            elif kind == 1:
                values = [int(v) for v in rng.integers(-2**63, 2**63 - 1, size=rng.integers(0, 3),
                                                       dtype=np.int64)]
                values += [0, 1, 4102444800][:rng.integers(0, 4)]
                proto[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                raw[name] = wire.int64_list(values)
            else:
                values = [float(v) for v in rng.normal(size=rng.integers(0, 3))]
                proto[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
                raw[name] = wire.float_list(values)
        expected = tf.train.Example(features=tf.train.Features(feature=proto)).SerializeToString(
            deterministic=True)
        assert wire.example(raw) == expected


@pytest.mark.parametrize("name,content,encoding", WIDE_FILES, ids=[w[0] for w in WIDE_FILES])
def test_a_utf16_or_utf32_file_is_named_with_the_conversion_that_fits(canonical, name, content, encoding):
    with open(os.path.join(canonical, "interactions.csv"), "wb") as f:
        f.write(content)
    with pytest.raises(DataError, match=rf"interactions.csv:1: the file is {encoding} .*"
                                        rf"iconv -f {encoding[:6]} -t UTF-8"):
        readers.read_dataset(canonical)
