"""Notebooks import from the package and are executed here. The walkthrough runs the pipeline
itself, where the README's `make run` ran; the model-analysis notebook reads the suite's shared
run."""

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import ROOT

NOTEBOOKS = os.path.join(ROOT, "notebooks")
# What each notebook must print: a figure that is only there when its analysis ran.
EXPECTED = {
    "01-walkthrough.ipynb": ("Pusher", "<- InteractionsExampleGen", "recall@10="),
    "02-model-analysis.ipynb": ("validation:", "new users: recall@10", "catalogue items have no"),
    "quickstart.ipynb": ("recall@10",),
}


def test_every_notebook_is_covered():
    assert sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")) == sorted(EXPECTED)


def _execute(name, env, tmp_path):
    """The notebook's printed text, executed in a kernel with ``env`` (and temporary files
    under ``tmp_path``)."""
    saved = dict(os.environ)
    os.environ.update({**env, "TF_USE_LEGACY_KERAS": "1", "TMPDIR": str(tmp_path)})
    try:
        notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(NOTEBOOKS)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED[name]:
        assert expected in text, (expected, text[-3000:])
    return text


def _recall_lines(text):
    """{model: recall@10} as the notebook printed it."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+) +recall@10=([0-9.]+)", text, re.M)}


@pytest.mark.e2e
def test_the_walkthrough_runs_the_pipeline_and_prints_its_figures(made_run, tmp_path):
    """The walkthrough runs the pipeline where `make run` ran (the default data, in its output
    dir): the steps whose inputs and settings are unchanged come from the cache, those that read
    the notebook's own serving dir run, and the new model is pushed there."""
    output = made_run.out
    assert made_run.result.returncode == 0, made_run.result.stdout[-3000:]
    text = _execute("01-walkthrough.ipynb", {"RECSYS_NOTEBOOK_OUTPUT": output}, tmp_path)
    summary = json.load(open(os.path.join(output, "summary.json")))
    assert "exit code 0" in text and summary["pushed"]
    assert summary["pushed_to"].startswith(os.path.join(output, "serving", "recommender"))
    printed = _recall_lines(text)
    assert printed == {name: round(values["recall@10"], 4)
                       for name, values in summary["evaluation"]["metrics"].items()}
    # Its "What ran" table: each step's newest execution and its state.
    states = dict(re.findall(r"^(\w+) +([A-Z]+) +[0-9.]+ s$", text, re.M))
    assert states["RetrievalTrainer"] == states["Transform"] == "CACHED", states
    assert states["ServedModel"] == states["Pusher"] == "COMPLETE", states
    assert len(os.listdir(os.path.join(output, "reports"))) >= 2


@pytest.mark.e2e
def test_the_model_analysis_reads_a_run_and_prints_its_figures(shared_run, tmp_path):
    text = _execute("02-model-analysis.ipynb", {"RECSYS_NOTEBOOK_OUTPUT": shared_run.out}, tmp_path)
    # It analyses the run it was pointed at (no run of its own): the figures are that run's.
    printed = _recall_lines(text)
    assert printed == {name: round(values["recall@10"], 4)
                       for name, values in shared_run.summary["evaluation"]["metrics"].items()}
    assert "pushed: True" in text
    cases = re.search(r"(\d+) new users: recall@10 of their later items with a 3-item history "
                      r"([0-9.]+), with nothing \(popularity\) ([0-9.]+)", text)
    assert cases and int(cases.group(1)) > 0, text[-2000:]


@pytest.mark.slow
def test_the_quickstart_scores_the_baselines(tmp_path):
    text = _execute("quickstart.ipynb", {"QUICKSTART_USERS": "300"}, tmp_path)
    assert re.search(r"\S+ \d{4,} interactions, 300 users, 400 items", text), text
    printed = _recall_lines(text)
    assert set(printed) == {"popularity", "EASE"} and 0 < printed["popularity"] < printed["EASE"]
