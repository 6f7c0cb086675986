"""Level 1: each config section travels into a component in one encoding and reads back the same."""

import dataclasses
import re

import pytest

from models.config import ConfigError, decode, encode, fields
from pipeline.config import DataConfig, PipelineConfig

SECTIONS = ("data", "retrieval", "index", "ranking", "rerank", "evaluation")


@pytest.mark.parametrize("name", SECTIONS)
def test_every_section_reads_back_from_its_encoding(name):
    config = PipelineConfig().with_lists(top_k=20)
    section = getattr(config, name)
    cls = type(section)
    assert decode(cls, encode(section)) == section  # custom components: the JSON text
    assert decode(cls, fields(section)) == section  # Trainer: the dict TFX parses it into
    assert decode(cls, None) == cls()


def test_tuples_survive_json_and_unknown_fields_are_refused():
    config = PipelineConfig()
    ranking = decode(type(config.ranking), encode(config.ranking))
    assert isinstance(ranking.hidden_units, tuple) and ranking.hidden_units == (128, 64)
    with pytest.raises(ConfigError, match=r"RankingConfig has no field\(s\) \['layers'\]"):
        decode(type(config.ranking), {"layers": 3})


def test_pipeline_validation_checks_every_section_and_how_they_fit():
    PipelineConfig().validate()
    bad = PipelineConfig()
    for change, field in ((dict(data=dataclasses.replace(bad.data, eval_fraction=1.0)),
                           "data.eval_fraction"),
                          (dict(index=dataclasses.replace(bad.index, flavour="annoy")), "index.flavour"),
                          (dict(retrieval=dataclasses.replace(bad.retrieval, batch_size=1)),
                           "retrieval.batch_size"),
                          (dict(evaluation=dataclasses.replace(bad.evaluation, cutoffs=(0,))),
                           "evaluation.cutoffs"),
                          (dict(top_k=200), r"index.candidates \(100\) must be >= top_k")):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(bad, **change).validate()


def test_example_gen_reads_back_the_data_section_it_was_given():
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    from components.example_gen import component, executor
    from models import features
    from models.data.config import DataConfig

    data = DataConfig(data_dir="/data", eval_fraction=0.3, split_strategy="global")
    gen = component.InteractionsExampleGen("/data", data)
    # One JSON string in the execution's properties, read back in one call.
    assert isinstance(gen.exec_properties[executor.DATA_CONFIG_KEY], str)
    assert executor.data_config(gen.exec_properties) == data
    assert executor.data_config({}) == DataConfig()
    assert "custom_config" not in gen.exec_properties or gen.exec_properties["custom_config"] is None
    # Splits named as the executors expect: train and eval by time; the catalogue in one split.
    given = proto_utils.json_to_proto(gen.exec_properties["input_config"], example_gen_pb2.Input())
    assert [s.name for s in given.splits] == [features.TRAIN, features.EVAL]
    catalogue = component.CatalogueExampleGen("/data", data).exec_properties
    output = proto_utils.json_to_proto(catalogue["output_config"], example_gen_pb2.Output())
    assert [s.name for s in output.split_config.splits] == [features.CATALOGUE]
    assert catalogue["output_file_format"] == example_gen_pb2.FORMAT_TFRECORDS_GZIP


def test_a_run_parameter_top_k_is_derived_and_checked_as_the_flag_is():
    """The Kubeflow tasks derive the sections from a run's top_k with the functions with_lists
    uses, and the index builder (the first task that reads it) refuses a bad one by name."""
    from components.index.executor import check_top_k

    compiled = PipelineConfig().with_lists(10)
    for top_k in (5, 20, 80):
        flag = PipelineConfig().with_lists(top_k)
        assert compiled.index.for_list(top_k) == flag.index
        assert compiled.evaluation.for_list(top_k) == flag.evaluation
        assert compiled.rerank.for_list(top_k) == flag.rerank
    assert compiled.evaluation.for_list(5).gate_metric == "recall@5"
    assert compiled.index.for_list(80).candidates == 160
    assert check_top_k(20, 400) == 20
    with pytest.raises(ValueError, match="run parameter top_k must be >= 1"):
        check_top_k(0)
    with pytest.raises(ValueError, match="run parameter top_k 500 is more than the 400 items"):
        check_top_k(500, 400)


@pytest.mark.parametrize("pattern,says", [
    ("span", "needs {SPAN}"), ("{SPAN}-{SPAN}", "{SPAN} once"), ("a/{SPAN}", "no '/'"),
    ("{SPAN}-{YYYY}{MM}{DD}", "not both"), ("{YYYY}{MM}", "needs {SPAN} or each")])
def test_a_span_pattern_tfx_could_not_read_is_refused_by_name(pattern, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        PipelineConfig(data=DataConfig(span_pattern=pattern)).validate()
    PipelineConfig(data=DataConfig(span_pattern="span-{SPAN:8}", spans=3)).validate()
