"""Level 1: the import graph runs one way and has no folder cycles (``make lint`` runs this too).

Layers, lowest first (README, "Layout"):
  shared basics (models/ root modules) -> model code (models/<role>/) -> the recommender
  servable and its clients (recommender/) -> TFX components (components/) -> the pipeline
  definition and its config (pipeline/) -> the run's presentation: summary, report, charts,
  run log (presentation/) -> runners (local/, kubeflow/) -> entry points
  (cli/, bench/).
A module may import its own layer and the ones below it, never one above; between folders
imports must not form a cycle. Imports inside functions count.
"""

from __future__ import annotations

import ast
import os
from typing import Dict, List, Set, Tuple

# The project's root, two folders up from tests/unit/.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("models", "recommender", "components", "pipeline", "presentation", "local", "kubeflow",
            "cli", "bench")
# (layer name, module prefixes); a module takes the layer of its longest matching prefix.
LAYERS = (
    ("shared basics", ("models.features", "models.arrays", "models.config", "models.records",
                       "models.holdout", "models.progress", "models")),
    ("model code", tuple(f"models.{role}" for role in ("data", "transform", "retrieval", "index",
                                                       "ranking", "evaluation"))),
    ("serving", ("recommender",)),
    ("components", ("components",)),
    ("pipeline", ("pipeline",)),
    ("presentation", ("presentation",)),
    ("runners", ("local", "kubeflow")),
    ("entry points", ("cli", "bench")),
)


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def modules(root: str, packages=PACKAGES) -> Dict[str, str]:
    """Dotted module name -> file, for every .py file of ``packages`` under ``root``."""
    out = {}
    for package in packages:
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                    out[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return out


def imports(path: str, known: Set[str]) -> List[Tuple[int, str]]:
    """(line, module) of every import of a project module in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.append((node.lineno, name if name in known else node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def folder_of(module: str, known: Dict[str, str]) -> str:
    """The folder (package) a module's file sits in."""
    path = known.get(module, "")
    is_package = path.endswith("__init__.py")
    return module if is_package else module.rsplit(".", 1)[0] if "." in module else module


def violations(root: str) -> Tuple[List[str], List[List[str]]]:
    """(upward imports as 'file:line: a (layer) imports b (layer)', folder cycles)."""
    known = modules(root)
    upward, edges = [], {}
    for module, path in sorted(known.items()):
        for line, target in imports(path, set(known)):
            source_layer, target_layer = layer_of(module), layer_of(target)
            if target_layer > source_layer:
                upward.append(f"{os.path.relpath(path, root)}:{line}: {module} "
                              f"({LAYERS[source_layer][0]}) imports {target} "
                              f"({LAYERS[target_layer][0]})")
            a, b = folder_of(module, known), folder_of(target, known)
            if a != b:
                edges.setdefault(a, set()).add(b)
    return upward, _cycles(edges)


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_imports_run_one_way_and_folders_have_no_cycles():
    upward, cycles = violations(ROOT)
    assert not upward, "imports up the layers:\n" + "\n".join(upward)
    assert not cycles, "folder cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_module_has_a_layer():
    assert all(layer_of(module) >= 0 for module in modules(ROOT))
    assert layer_of("models.ranking.trainer") == 1 and layer_of("models.features") == 0
    assert layer_of("local.runner") == 6 and layer_of("pipeline.pipeline") == 4
    assert layer_of("presentation.summary") == 5


def test_the_check_finds_an_upward_import_and_a_cycle(tmp_path):
    def write(path, text):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)

    write("models/__init__.py", "")
    write("models/ranking/__init__.py", "")
    write("models/index/__init__.py", "")
    write("models/ranking/trainer.py", "from models.index import servable\n")
    # A function-level import counts: the model code reaching up into the pipeline.
    write("models/index/servable.py", "def f():\n    from pipeline import config\n"
                                      "from models.ranking import trainer\n")
    write("pipeline/__init__.py", "")
    write("pipeline/config.py", "")
    upward, cycles = violations(str(tmp_path))
    assert len(upward) == 1 and "models.index.servable (model code) imports pipeline.config" \
        in upward[0] and upward[0].startswith(os.path.join("models", "index", "servable.py") + ":2")
    assert cycles == [["models.index", "models.ranking", "models.index"]]


def test_test_modules_share_helpers_only_through_the_support_module():
    """A test module imports tests/support.py (fixtures live in tests/conftest.py), never
    another test module or the conftest: each test file can be run, moved or removed alone."""
    tests = modules(ROOT, ("tests",))
    wrong = []
    for path in tests.values():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            wrong += [(os.path.relpath(path, ROOT), node.lineno, name) for name in names
                      if name.startswith("tests.") and name != "tests.support"]
    assert not wrong, wrong
    # The check sees such an import.
    assert any(name == "tests.support" for path in tests.values()
               for node in ast.walk(ast.parse(open(path, encoding="utf-8").read()))
               if isinstance(node, ast.ImportFrom) for name in [node.module])


LEVELS = ("unit", "component", "compile", "e2e")


def test_every_test_module_sits_in_its_level_folder():
    """tests/<level>/test_*.py, one folder per level of ../shared/STYLE.md ("Tests"); the
    tests/ root holds only the shared fixtures and helpers."""
    tests = os.path.join(ROOT, "tests")
    loose = sorted(name for name in os.listdir(tests) if name.startswith("test_"))
    assert not loose, f"test modules outside a level folder: {loose}"
    folders = sorted(name for name in os.listdir(tests)
                     if os.path.isdir(os.path.join(tests, name)) and not name.startswith((".", "__")))
    assert folders == sorted(LEVELS)
    for level in LEVELS:
        names = os.listdir(os.path.join(tests, level))
        assert "__init__.py" in names and any(n.startswith("test_") for n in names), level
