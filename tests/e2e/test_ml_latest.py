"""Level 4: the real local pipeline on a folder as GroupLens ships ml-latest-small today
(ratings.csv, movies.csv, tags.csv, links.csv; UTF-8 CSV; no user file)."""

import pytest
import tensorflow as tf

from models import features
from pipeline.config import DataConfig, PipelineConfig, RankingConfig, RetrievalConfig
from presentation import summary as summary_lib
from tests.support import IN_PROCESS, run_pipeline, serves_every_user

pytestmark = pytest.mark.e2e


def test_ml_latest_layout_runs_and_serves_every_user(ml_latest, tmp_path, capsys):
    """Users without demographics are served by id and history: every rater gets a full list
    of catalogue items they never rated, quoted and non-Latin titles come back intact."""
    config = PipelineConfig(serving_dir=str(tmp_path / "serving"), top_k=10, beam_args=IN_PROCESS,
                            data=DataConfig(data_dir=ml_latest),
                            retrieval=RetrievalConfig(learning_rate=0.005, epochs=4),
                            ranking=RankingConfig(epochs=1))
    summary = run_pipeline(config, tmp_path / "out")
    assert summary["pushed"], summary_lib.render(summary)
    assert "Data: no users file: every user's demographics are unknown" in capsys.readouterr().out
    model, ds = serves_every_user(config.push_dir, ml_latest)
    by_title = {item[features.TITLE]: item_id for item_id, item in ds.items.items()}
    asked = ["American President, The (1995)", "千と千尋の神隠し (2001)"]
    titles = model.signatures["lookup_titles"](
        item_ids=tf.constant([by_title[t] for t in asked]))["titles"].numpy()
    assert [t.decode("utf-8") for t in titles] == asked
