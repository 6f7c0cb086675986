"""Level 1: command-line flags land in the typed configuration."""

from pipeline import cli
from pipeline.config import IndexConfig


def _config(*flags):
    return cli._config(cli.build_parser().parse_args(["run", *flags]))


def test_defaults_are_the_typed_defaults():
    config = _config()
    assert config.index == IndexConfig() and config.top_k == 10


def test_index_flags_override_flavour_and_recall_threshold():
    config = _config("--index-flavour", "scann", "--index-min-recall", "0.99", "--top-k", "150")
    assert (config.index.flavour, config.index.min_recall) == ("scann", 0.99)
    assert config.index.candidates == 150  # never fewer candidates than the list length
    config.validate()
