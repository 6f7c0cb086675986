"""Level 4: the EASE benchmark end to end at small shapes (figures, not timing targets)."""

import json

import pytest

from bench import ease as bench

pytestmark = pytest.mark.slow


def test_both_forms_are_timed_side_by_side_and_give_the_same_lists(tmp_path, capsys):
    assert bench.main(["--shapes", "60x400x2500,400x60x2500", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "ease.json").read_text())["rows"]
    assert [(row["form"]) for row in rows] == ["primal", "dual", "primal", "dual"]
    # One model in two forms: the scores differ by rounding only.
    assert all(row["max_score_diff"] < 1e-8 for row in rows)
    assert all(row["seconds"] > 0 and row["peak_mib"] > 0 for row in rows)
    # The evaluator's choice: the dual form with more items than users, the primal otherwise.
    chosen = {row["shape"]: row["form"] for row in rows if row["chosen"]}
    assert [chosen[shape] for shape in sorted(chosen, key=lambda s: int(s.split("x")[0]))] == [
        "dual", "primal"]
    assert "primal / dual =" in printed and (tmp_path / "ease.txt").read_text().strip() in printed
