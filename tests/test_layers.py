"""The package's layers point one way (README.md, "Layout"): notebooks -> chapter analyses -> the
catalog of named experiments -> experiments -> data/noise/model/train/evaluate/results. The
scheduler and the notebook runner sit on top; nothing below imports what is above it."""

import ast
from pathlib import Path

import helpers

LAYERS = [
    {"__init__", "profiles", "recipe", "sources"},
    {"data", "noise", "corruptions", "augment", "model", "train", "evaluate", "results",
     "plots", "report"},
    {"experiments"},
    {"catalog"},
    {"confident", "audit", "shift", "duplicates"},
    {"scheduler", "run"},
]
PACKAGE = Path(helpers.__file__).parent


def _level(module: str) -> int:
    for n, layer in enumerate(LAYERS):
        if module in layer:
            return n
    raise AssertionError(f"helpers/{module}.py is in no layer: add it to LAYERS in {__file__}")


def _imported(tree: ast.AST) -> set[str]:
    """The helpers modules a module imports, anywhere in it (also inside functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "helpers":
            found |= {alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists()}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")}
    return found


def test_every_module_imports_only_its_own_layer_or_below():
    upward = []
    for file in sorted(PACKAGE.glob("*.py")):
        module = file.stem
        for other in _imported(ast.parse(file.read_text())):
            if _level(other) > _level(module):
                upward.append(f"helpers/{module}.py imports helpers.{other}")
    assert not upward, "imports that point up the layers: " + "; ".join(upward)


def test_the_layer_check_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from helpers import scheduler\n    import helpers.run\n")
    assert _imported(tree) == {"scheduler", "run"}
