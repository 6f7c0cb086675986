"""Level 1: command-line flags land in the typed configuration."""

from cli import main as cli
from pipeline.config import IndexConfig, RankingConfig, RetrievalConfig


def _config(*flags):
    return cli._config(cli.build_parser().parse_args(["run", *flags]))


def test_defaults_are_the_typed_defaults():
    config = _config()
    assert config.index == IndexConfig() and config.top_k == 10
    assert config.ranking == RankingConfig() and config.retrieval == RetrievalConfig()


def test_index_flags_override_flavour_and_recall_threshold():
    config = _config("--index-flavour", "scann", "--index-min-recall", "0.99", "--top-k", "150")
    assert (config.index.flavour, config.index.min_recall) == ("scann", 0.99)
    # The ranker picks the list from twice as many retrieved candidates, and learns on lists
    # as long as those it ranks when served.
    assert config.index.candidates == config.ranking.list_length == 300
    assert config.rerank.max_k == 150 and 150 in config.evaluation.cutoffs
    config.validate()
    config = _config("--top-k", "150", "--candidates", "150", "--no-refit")
    assert config.index.candidates == config.ranking.list_length == 150
    assert config.retrieval.refit is False
    config.validate()


def test_cache_flag_turns_on_tfx_caching():
    assert _config().enable_cache is False and _config("--cache").enable_cache is True


def test_a_bad_value_stops_the_run_before_anything_is_read_or_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--diversity", "1.0", "--output-dir", str(out)]) == 2
    assert "rerank.diversity must be in [0, 1)" in capsys.readouterr().out
    # Validated when the pipeline is created: no data generated, no metadata store opened.
    assert not out.exists() or not any(out.iterdir())
