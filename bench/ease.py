"""EASE's two exact forms side by side, same run: the items x items inverse (the primal form,
what the whole-list evaluator used up to 5,000 items) and the users x users one (Woodbury's
identity), on synthetic data of MovieLens shapes.

    make bench-ease                                  (ML-100K and ml-latest-small shapes)
    python -m bench.ease --shapes 943x1682x100000,610x9742x100836 --out bench/results/ease

For each shape (users x items x interactions) and form, one fit: the wall time of fitting and
scoring every user for every item (``metrics.ease_scorer``, what ``ease_recommendations``
does before it keeps each user's top 100), the peak memory NumPy allocates for it
(tracemalloc), and the largest difference of the first users' scores from the primal
form's (the forms are the same model: rounding only; items that tie, such as two items no
user shares, may then swap places in a list). The evaluator chooses the form whose inverse is
the smaller side (``ease_scorer``, dual=None).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from typing import Dict, List

import numpy as np

from models.data import synthetic
from models.evaluation import metrics

# The lists' default L2 weight, and the users scored per matrix product (as the lists score them).
L2 = 500.0
BATCH = 256
FORMS = (("primal", False), ("dual", True))


def measure(users: int, items: int, interactions: int, seed: int = 0) -> List[Dict[str, object]]:
    data = synthetic.generate(num_users=users, num_items=items, num_interactions=interactions,
                              seed=seed)
    seen = metrics.group_by_user([r[0] for r in data["interactions"]],
                                 [r[1] for r in data["interactions"]])
    x, items, _ = metrics.interaction_matrix(seen)
    rows, scores = [], {}
    for name, dual in FORMS:
        tracemalloc.start()
        started = time.perf_counter()
        score = metrics.ease_scorer(x, L2, dual)
        for start in range(0, len(x), BATCH):
            block = score(x[start:start + BATCH])
            if start == 0:
                scores[name] = block
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"shape": f"{len(seen)}x{len(items)}", "form": name, "seconds": took,
                     "peak_mib": peak / 2**20,
                     "max_score_diff": float(np.abs(scores[name] - scores["primal"]).max()),
                     "chosen": (len(items) > len(seen)) == dual})
    return rows


def table(rows: List[Dict[str, object]]) -> str:
    lines = [f"{'users x items':>14} {'form':>7} {'seconds':>8} {'peak MiB':>9} "
             f"{'max |score - primal|':>21} {'evaluator':>10}"]
    for row in rows:
        lines.append(f"{row['shape']:>14} {row['form']:>7} {row['seconds']:>8.2f} "
                     f"{row['peak_mib']:>9.1f} {row['max_score_diff']:>21.1e} "
                     f"{'uses it' if row['chosen'] else '':>10}")
    by_shape: Dict[str, Dict[str, Dict[str, object]]] = {}
    for row in rows:
        by_shape.setdefault(row["shape"], {})[row["form"]] = row
    for shape, forms in by_shape.items():
        p, d = forms["primal"], forms["dual"]
        lines.append(f"{shape}: primal / dual = {p['seconds'] / max(d['seconds'], 1e-9):.1f}x time, "
                     f"{p['peak_mib'] / max(d['peak_mib'], 1e-9):.1f}x memory")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="943x1682x100000,610x9742x100836",
                        help="comma-separated users x items x interactions")
    parser.add_argument("--out", default="bench/results/ease")
    args = parser.parse_args(argv)
    rows = []
    for shape in args.shapes.split(","):
        users, items, interactions = (int(v) for v in shape.split("x"))
        rows += measure(users, items, interactions)
    text = table(rows)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ease.json"), "w") as f:
        json.dump({"rows": rows}, f, indent=2)
    with open(os.path.join(args.out, "ease.txt"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
