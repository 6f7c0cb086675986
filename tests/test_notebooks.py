"""Notebooks import from the package and are executed here, with small data, in name order
(the model-analysis notebook reads the walkthrough's run)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
# What each notebook must print: a figure that is only there when its analysis ran.
EXPECTED = {
    "01-walkthrough.ipynb": ("Pusher", "<- InteractionsExampleGen", "recall@10="),
    "02-model-analysis.ipynb": ("validation:", "new users: recall@10", "catalogue items have no"),
    "quickstart.ipynb": ("recall@10",),
}


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    """The environment the notebooks read: small data, one shared output folder."""
    output = tmp_path_factory.mktemp("notebooks")
    saved = dict(os.environ)
    os.environ.update({"RECSYS_NOTEBOOK_USERS": "200", "RECSYS_NOTEBOOK_OUTPUT": str(output),
                       "TF_USE_LEGACY_KERAS": "1"})
    yield output
    os.environ.clear()
    os.environ.update(saved)


def test_every_notebook_is_covered():
    assert sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_executes(name, notebook_env):
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(NOTEBOOKS)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED[name]:
        assert expected in text, (expected, text[-3000:])
    if name == "01-walkthrough.ipynb":
        # The walkthrough's run wrote its report, which the analysis notebook's run does not need.
        assert os.listdir(os.path.join(notebook_env, "reports"))
