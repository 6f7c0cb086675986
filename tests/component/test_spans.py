"""Level 2-3: a data folder of dated spans through the real ExampleGens on TFX's LocalDagRunner
(in-process Beam, SQLite ML Metadata): the window read, and recorded on the published artifacts."""

import os

import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from tfx import v1 as tfx

from components.example_gen.component import CatalogueExampleGen, InteractionsExampleGen
from models import features
from models.data import spans
from models.data.config import DataConfig
from models.data.errors import DataError
from tests.support import BEAM_STEP_ARGS, cut_into_spans, plain_argv, write

pytestmark = pytest.mark.slow


def _count(uri, split):
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def test_the_example_gens_read_the_latest_spans_and_record_the_window(tiny_data, tmp_path):
    root = tmp_path / "data"
    folders = cut_into_spans(tiny_data, root, 3, name="span-{}", first=20261201)
    write(root / "span-20261203", "items.csv",
          open(os.path.join(folders[-1], "items.csv")).read() + "9999,Only Newest,,2026\n")
    data = DataConfig(data_dir=str(root), spans=2)
    sqlite = str(tmp_path / "metadata.sqlite")
    pipe = tfx.dsl.Pipeline(
        pipeline_name="spans", pipeline_root=str(tmp_path / "root"),
        components=[InteractionsExampleGen(str(root), data), CatalogueExampleGen(str(root), data)],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(sqlite),
        beam_pipeline_args=list(BEAM_STEP_ARGS))
    with plain_argv():
        tfx.orchestration.LocalDagRunner().run(pipe)
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(sqlite))
    published = store.get_artifacts_by_type("Examples")
    assert len(published) == 2
    for artifact in published:
        assert artifact.properties["span"].int_value == 20261203
        assert artifact.custom_properties[spans.SPAN_FIRST].int_value == 20261202
        assert artifact.custom_properties[spans.SPAN_LAST].int_value == 20261203
        assert artifact.custom_properties[spans.SPAN_NAMES].string_value == "span-20261202,span-20261203"
    interactions, catalogue = sorted(published, key=lambda a: "Catalogue" in a.uri)
    rows = sum(len(open(os.path.join(f, "interactions.csv")).read().splitlines()) - 1
               for f in folders[1:])
    assert _count(interactions.uri, features.TRAIN) + _count(interactions.uri, features.EVAL) == rows
    assert _count(catalogue.uri, features.CATALOGUE) == 401  # the 400 items and the newest span's one


def test_a_span_folder_is_checked_before_anything_reads_it(tmp_path, canonical):
    root = tmp_path / "data"
    os.makedirs(root / "span-1")
    os.makedirs(root / "span-01")
    with pytest.raises(DataError, match="span-01 and span-1 are the same span"):
        spans.window(str(root), "span-{SPAN}", 0)
    os.rmdir(root / "span-01")
    write(root, "interactions.csv", "user_id,item_id,timestamp\n")
    with pytest.raises(DataError, match=r"holds span folders .* and data files of its own "
                                        r"\(interactions.csv\)"):
        spans.window(str(root), "span-{SPAN}", 0)
    with pytest.raises(DataError, match=r"no span folders named like 'span-\{SPAN\}'.*--spans"):
        spans.window(canonical, "span-{SPAN}", 2)
    assert spans.window(canonical, "span-{SPAN}", 0) == []  # a plain folder is read whole
    dated = tmp_path / "dated"
    for name in ("day=2026-12-01", "day=2026-12-03", "day=2026-12-02", "notes"):
        os.makedirs(dated / name)
    window = spans.window(str(dated), "day={YYYY}-{MM}-{DD}", 2)
    assert [s.name for s in window] == ["day=2026-12-02", "day=2026-12-03"]
    assert window[-1].number - window[0].number == 1  # days since 1970-01-01, as in TFX
    os.makedirs(dated / "day=2026-02-30")
    with pytest.raises(DataError, match="day=2026-02-30: not a calendar date"):
        spans.window(str(dated), "day={YYYY}-{MM}-{DD}", 0)
