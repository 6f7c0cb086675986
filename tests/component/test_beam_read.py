"""Level 2: the ExampleGens' Beam reading gives what the in-memory reader gives, row for row.

The in-memory reader (models/data/readers.py, splits.py) is the reference: the same examples
per split, and the same DataError for every broken file, whether the interactions file is
read in one range or in many 1 KiB ranges whose boundaries fall inside rows.
"""

import os
import shutil

import apache_beam as beam
import pytest
import tensorflow as tf

from models import features
from models.data import beam as data_beam
from models.data import examples, readers, schema, spans, splits
from models.data.beam import files as data_files
from models.data.config import DataConfig
from models.data.errors import DataError
from pipeline.config import PipelineConfig
from tests.support import (
    BEAM_STEP_ARGS,
    BROKEN_FILES,
    BROKEN_IDS,
    WIDE_FILES,
    cut_into_spans,
    plain_argv,
    write,
)

ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _read_records(pattern):
    return sorted(r.numpy() for f in tf.io.gfile.glob(pattern) for r in tf.data.TFRecordDataset(f))


def beam_examples(folder, out, strategy="per_user", max_bad=0.0, range_bytes=DataConfig.range_bytes,
                  args=ARGS, side_input_bytes=DataConfig.side_input_bytes):
    """{split: sorted serialized examples} of the interactions ExampleGen's steps, and the report."""
    out = str(out)
    with beam.Pipeline(argv=args) as p:
        found = data_beam.interactions(p, folder, 0.2, strategy, schema.domains(), range_bytes,
                                       side_input_bytes)
        for name, pc in found.splits.items():
            _ = pc | f"Write{name}" >> beam.io.WriteToTFRecord(os.path.join(out, name))
        data_beam.write_report(p, found.problems, os.path.join(out, "report.json"))
    report = data_beam.check(os.path.join(out, "report.json"), max_bad)
    return {name: _read_records(os.path.join(out, name + "*")) for name in found.splits}, report


def memory_examples(folder, strategy="per_user", max_bad=0.0):
    ds = readers.read_dataset(folder, max_bad)
    indices = splits.temporal_split(ds.interactions, 0.2, strategy)
    histories = splits.Histories(ds.interactions, features.MAX_HISTORY)
    return {name: sorted(examples.interaction_examples(ds, idx, histories))
            for name, idx in indices.items()}, ds


@pytest.mark.parametrize("range_bytes,side_input_bytes",
                         [(DataConfig.range_bytes, DataConfig.side_input_bytes), (1024, 0)],
                         ids=["one-range-items-side-input", "1KiB-ranges-items-cogroup"])
def test_beam_examples_equal_the_in_memory_reader(tiny_data, tmp_path, range_bytes, side_input_bytes):
    got, report = beam_examples(tiny_data, tmp_path, range_bytes=range_bytes,
                                side_input_bytes=side_input_bytes)
    want, ds = memory_examples(tiny_data)
    assert len(got[features.TRAIN]) + len(got[features.EVAL]) == len(ds) > 14_000
    assert got == want
    assert report.rows_read == ds.report.rows_read


def test_global_split_and_movielens_hazards_equal_the_in_memory_reader(ml100k_hazards, tmp_path):
    """Latin-1, '|' and tab separated, a user whose interactions share one second (ties keep
    file order), single-interaction users; the 'global' time cut is exact."""
    for strategy in ("per_user", "global"):
        got, report = beam_examples(ml100k_hazards, tmp_path / strategy, strategy, range_bytes=2048,
                                    side_input_bytes=0 if strategy == "global" else 1 << 20)
        want, ds = memory_examples(ml100k_hazards, strategy)
        assert got == want, strategy
        assert got[features.EVAL] and got[features.TRAIN]
    assert report.warnings == ds.report.warnings


def test_ml_latest_equals_the_in_memory_reader(ml_latest, tmp_path):
    """GroupLens's current CSV layout: headers that name ids userId and movieId, quoted titles
    with commas, UTF-8 scripts, no user file; ranges of 2 KiB cut its rows."""
    want, ds = memory_examples(ml_latest)
    for side_input_bytes in (DataConfig.side_input_bytes, 0):  # items as a side input, cogrouped
        got, report = beam_examples(ml_latest, tmp_path / f"latest{side_input_bytes}",
                                    range_bytes=2048, side_input_bytes=side_input_bytes)
        assert got == want and got[features.EVAL] and got[features.TRAIN]
        assert report.rows_read == ds.report.rows_read
    # tags.csv reached the examples as the items' tags, and the catalogue's examples too.
    tagged = [tf.train.Example.FromString(e) for e in got[features.TRAIN]]
    assert any(list(e.features.feature[features.TAGS].bytes_list.value[:1]) == [b"pixar"]
               for e in tagged)
    with beam.Pipeline(argv=ARGS) as p:
        items, problems = data_beam.catalogue(p, ml_latest, schema.domains())
        _ = items | beam.io.WriteToTFRecord(str(tmp_path / "catalogue" / "items"))
    assert _read_records(str(tmp_path / "catalogue" / "items*")) == sorted(
        examples.catalogue_examples(ds))


def test_ml1m_and_missing_side_tables(ml1m, tmp_path):
    got, _ = beam_examples(ml1m, tmp_path / "ml1m")
    assert got == memory_examples(ml1m)[0]
    bare = tmp_path / "bare"
    bare.mkdir()
    write(bare, "interactions.csv", "user_id,item_id,timestamp\na,x,1\nb,y,2\na,y,3\n")
    got, _ = beam_examples(str(bare), tmp_path / "bare-out")
    assert got == memory_examples(str(bare))[0]


@pytest.mark.parametrize("name,content,message", BROKEN_FILES,
                         ids=BROKEN_IDS)
def test_broken_files_stop_with_the_same_message(canonical, tmp_path, name, content, message):
    write(canonical, name, content)
    with pytest.raises(DataError, match=message):
        beam_examples(canonical, tmp_path / "side-input")
    with pytest.raises(DataError, match=message):
        beam_examples(canonical, tmp_path / "cogroup", side_input_bytes=0)


def test_bad_rows_in_far_ranges_are_counted_and_named_by_line(tiny_data, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(tiny_data, folder)
    path = folder / "interactions.csv"
    with open(path) as f:
        lines = f.read().splitlines()
    lines[7000] = "1,2,not-a-time,4"
    lines[12000] = lines[12000].split(",")[0] + ",no-such-item,5,1"
    write(folder, "interactions.csv", "\n".join(lines) + "\n")
    rows = len(lines) - 1
    with pytest.raises(DataError, match=rf"interactions.csv: 2 of {rows} row\(s\) are invalid[^\n]*\n"
                                        r".*interactions.csv:7001: field 'timestamp'.*\n"
                                        r".*interactions.csv:12001: field 'item_id': item 'no-such-item'"):
        beam_examples(str(folder), tmp_path / "strict", range_bytes=4096)
    got, report = beam_examples(str(folder), tmp_path / "lenient", max_bad=0.001, range_bytes=4096)
    assert [(r.line, r.field) for r in report.skipped] == [(7001, "timestamp"), (12001, "item_id")]
    assert sum(map(len, got.values())) == rows - 2
    assert got == memory_examples(str(folder), max_bad=0.001)[0]


def test_non_utf8_line_is_named(canonical, tmp_path):
    with open(os.path.join(canonical, "items.csv"), "wb") as f:
        f.write(b"item_id,title\n10,Heat\n11,Am\xe9lie\n12,Up\n")
    with pytest.raises(DataError, match=r"items.csv:3: not valid utf-8 .*0xe9 at offset 27"):
        beam_examples(canonical, tmp_path)


def test_the_catalogue_reads_only_the_items_file(canonical, tmp_path):
    write(canonical, "interactions.csv", "user_id,item_id,timestamp\n1,10,oops\n")  # not read
    with beam.Pipeline(argv=ARGS) as p:
        items, problems = data_beam.catalogue(p, canonical, schema.domains())
        _ = items | beam.io.WriteToTFRecord(str(tmp_path / "out" / "items"))
        data_beam.write_report(p, problems, str(tmp_path / "report.json"))
    report = data_beam.check(str(tmp_path / "report.json"), 0.0)
    assert list(report.rows_read) == [os.path.join(canonical, "items.csv")]
    got = _read_records(str(tmp_path / "out" / "items*"))
    assert got == sorted(examples.catalogue_examples(readers.read_dataset(
        _with_valid_interactions(canonical, tmp_path))))


def _with_valid_interactions(canonical, tmp_path):
    folder = tmp_path / "valid"
    shutil.copytree(canonical, folder)
    write(folder, "interactions.csv", "user_id,item_id,timestamp\n1,10,1\n")
    return str(folder)


# --- the executors: the report, the budget, and nothing of the data in the driver ---------


def _run_executor(data_dir, out, data=None, args=BEAM_STEP_ARGS):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from components.example_gen import executor as example_gen
    from models.data.config import DataConfig
    from tests.support import gen_properties

    artifact = standard_artifacts.Examples()
    artifact.uri = str(out)
    os.makedirs(artifact.uri, exist_ok=True)
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(args),
                                                          tmp_dir=str(out) + "-tmp")
    with plain_argv():
        example_gen.InteractionsExecutor(context).Do(
            {}, {"examples": [artifact]},
            gen_properties(data_dir, data or DataConfig(data_dir=data_dir), (features.TRAIN, features.EVAL)))
    return artifact


@pytest.mark.slow
def test_the_executor_keeps_its_report_and_enforces_the_budget(tiny_data, tmp_path):
    from models.data.config import DataConfig

    folder = tmp_path / "data"
    shutil.copytree(tiny_data, folder)
    with open(folder / "interactions.csv", "a") as f:
        f.write("1,2,not-a-time,4\n")
    with pytest.raises(DataError, match=r"interactions.csv:\d+: field 'timestamp': 'not-a-time'"):
        _run_executor(str(folder), tmp_path / "strict")
    artifact = _run_executor(str(folder), tmp_path / "lenient",
                             DataConfig(data_dir=str(folder), max_bad_row_fraction=0.01))
    with open(os.path.join(artifact.uri, "validation_report.json")) as f:
        report = __import__("json").load(f)
    inter = [entry for entry in report["files"] if entry["path"].endswith("interactions.csv")][0]
    assert inter["bad"] == 1 and inter["first_bad"][0]["field"] == "timestamp"


@pytest.mark.slow
def test_nothing_of_the_data_passes_through_the_driver(tmp_path, monkeypatch):
    """With worker processes (the default runner), the executor's own process reads the
    headers and file sizes only: a few hundred bytes of a 0.8 MB interactions file."""
    from models.data import synthetic

    folder = synthetic.write_canonical(str(tmp_path / "data"), num_users=600, num_items=500,
                                       num_interactions=40_000, seed=1)
    size = os.path.getsize(os.path.join(folder, "interactions.csv"))
    read = []
    opened = data_files.open_file

    class Counting:
        def __init__(self, f):
            self._f = f

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def __iter__(self):
            for line in self._f:
                read.append(len(line))
                yield line

        def readline(self, *a):
            line = self._f.readline(*a)
            read.append(len(line))
            return line

        def read(self, *a):
            data = self._f.read(*a)
            read.append(len(data))
            return data

    monkeypatch.setattr(data_files, "open_file", lambda path: Counting(opened(path)))
    workers = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    artifact = _run_executor(folder, tmp_path / "out",
                             args=PipelineConfig(beam_args=workers).beam_pipeline_args)
    assert sum(read) < 3 * 65536 < size  # the three headers (and a 64 KiB look past a blank one)
    written = sum(os.path.getsize(os.path.join(root, name))
                  for root, _, names in os.walk(artifact.uri) for name in names)
    assert written > size / 4  # the examples were written, by the workers


@pytest.mark.parametrize("name,content,encoding", WIDE_FILES, ids=[w[0] for w in WIDE_FILES])
def test_a_utf16_or_utf32_file_is_named_with_the_conversion_that_fits(canonical, tmp_path, name,
                                                                     content, encoding):
    with open(os.path.join(canonical, "interactions.csv"), "wb") as f:
        f.write(content)
    with pytest.raises(DataError, match=rf"interactions.csv:1: the file is {encoding} .*"
                                        rf"iconv -f {encoding[:6]} -t UTF-8"):
        beam_examples(canonical, tmp_path)


def test_a_window_of_span_folders_reads_as_the_folder_whole(tiny_data, tmp_path):
    """The interactions cut by time into three span folders: the window of all three gives the
    whole folder's examples (timelines and histories run across spans), the latest span alone
    gives that span's folder read alone."""
    folders = cut_into_spans(tiny_data, tmp_path / "spans", 3)
    assert [s.path for s in spans.window(str(tmp_path / "spans"), "span-{SPAN}", 0)] == folders
    whole, _ = beam_examples(tiny_data, tmp_path / "whole")
    got, report = beam_examples(folders, tmp_path / "window", range_bytes=8192)
    assert got == whole and len(report.rows_read) == 9  # three files per span
    latest = spans.window(str(tmp_path / "spans"), "span-{SPAN}", 1)
    assert [s.path for s in latest] == folders[-1:]
    got, _ = beam_examples([s.path for s in latest], tmp_path / "latest")
    assert got == memory_examples(folders[-1])[0]


def test_a_window_takes_each_items_newest_row_and_names_a_bad_rows_own_span(canonical, tmp_path):
    old, new = tmp_path / "span-1", tmp_path / "span-2"
    shutil.copytree(canonical, old)
    shutil.copytree(canonical, new)
    write(old, "interactions.csv", "user_id,item_id,timestamp\n1,10,100\n")
    write(new, "interactions.csv", "user_id,item_id,timestamp\n1,11,200\n2,13,300\n")
    write(new, "items.csv", "item_id,title,genres,year\n10,Heat (Director's Cut),Action,1995\n"
                            "11,Up,Animation,\n13,Never Seen,,\n14,Brand New,,2026\n")
    with beam.Pipeline(argv=ARGS) as p:
        items, _ = data_beam.catalogue(p, [str(old), str(new)], schema.domains())
        _ = items | beam.io.WriteToTFRecord(str(tmp_path / "catalogue" / "items"))
    written = _read_records(str(tmp_path / "catalogue" / "items*"))
    catalogue = {e.features.feature[features.ITEM_ID].bytes_list.value[0]:
                 e.features.feature[features.TITLE].bytes_list.value[0]
                 for e in map(tf.train.Example.FromString, written)}
    # Item 12 is only in the older span's file, 14 only in the newer: the window holds both.
    assert catalogue == {b"10": b"Heat (Director's Cut)", b"11": b"Up", b"12": b"Crash, The (1996)",
                         b"13": b"Never Seen", b"14": b"Brand New"}
    got, _ = beam_examples([str(old), str(new)], tmp_path / "examples")
    first = [tf.train.Example.FromString(e) for e in got[features.TRAIN] + got[features.EVAL]]
    heat = [e for e in first if e.features.feature[features.ITEM_ID].bytes_list.value[0] == b"10"]
    assert [e.features.feature[features.TITLE].bytes_list.value[0] for e in heat] == \
        [b"Heat (Director's Cut)"]
    write(new, "interactions.csv", "user_id,item_id,timestamp\n1,11,200\n1,99,300\n")
    with pytest.raises(DataError, match=r"span-2/interactions.csv:3: field 'item_id': item '99' "
                                        r"is not in .*span-2/items.csv"):
        beam_examples([str(old), str(new)], tmp_path / "bad")
    os.remove(new / "users.csv")
    with pytest.raises(DataError, match=r"span-2: no users file, while the span .*span-1 has one"):
        beam_examples([str(old), str(new)], tmp_path / "mixed")
