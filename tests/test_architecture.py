"""The shape of the package, checked: stages import only stages below them, no import cycle, every module
declares ``__all__``, and no module grows past about 400 lines without saying why in its docstring."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kaggle_kit"
# The stack, bottom first. Top-level modules (errors, registry, config, competition, project ...) are
# the base every stage may use; each stage may import itself and the stages before it.
STAGES = ["", "data", "model", "training", "prediction", "kaggle", "tools", "api", "cli"]
# Deliberate exceptions, each with its reason. ``TrainConfig.validate()`` checks a config's names against
# the registries of the stages that use them, importing them inside the method.
LAZY_UPWARD = {"kaggle_kit.config": {"kaggle_kit.data.augment", "kaggle_kit.data.resize", "kaggle_kit.model.backbones",
                                     "kaggle_kit.model.strategy", "kaggle_kit.training.schedules",
                                     "kaggle_kit.training.optim"}}
MAX_LINES = 420          # "about 400 lines"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _stage(module: str) -> int:
    """The stage a module belongs to: its sub-package, or ``api`` for kaggle_kit/api.py, else 0 (the base)."""
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else 0


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, *, module_level: bool) -> set[str]:
    """kaggle_kit modules ``path`` imports; ``module_level``: only those run at import time (not inside a
    function, not under ``if TYPE_CHECKING``)."""
    module = next(m for m, p in MODULES.items() if p == path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level and (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) or _type_checking(child)):
                continue
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([child.module] if child.module else []))
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in MODULES else base)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES and m != module}


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} -> {t}" for m, targets in graph.items() if m not in ("kaggle_kit", "kaggle_kit.__main__")
            for t in sorted(targets) if _stage(t) > _stage(m) and t not in LAZY_UPWARD.get(m, ())]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of two or more modules (Tarjan)."""
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = [stack.pop()]
            while comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            connect(v)
    return cycles


def test_stages_import_only_the_stages_below_them():
    """Function-level imports count too: a lazy import is still a dependency."""
    graph = {m: _imports(p, module_level=False) for m, p in MODULES.items()}
    assert _upward(graph) == []


def test_no_import_cycle_at_import_time():
    graph = {m: _imports(p, module_level=True) for m, p in MODULES.items()}
    assert _cycles(graph) == []


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = {"kaggle_kit.data.a": {"kaggle_kit.training.trainer"}, "kaggle_kit.training.trainer": {"kaggle_kit.data.a"},
             "kaggle_kit.errors": set()}
    assert _upward(graph) == ["kaggle_kit.data.a -> kaggle_kit.training.trainer"]
    assert _cycles(graph) == [["kaggle_kit.data.a", "kaggle_kit.training.trainer"]]


@pytest.mark.parametrize("module", [m for m in MODULES if not m.endswith("__main__") and ".bundled." not in m])
def test_every_module_declares_all(module):
    tree = ast.parse(MODULES[module].read_text())
    names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{MODULES[module].relative_to(ROOT)} declares no __all__"


def test_no_module_over_400_lines_without_a_stated_reason():
    long = []
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "over 400 lines" not in doc.lower():
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert long == []
