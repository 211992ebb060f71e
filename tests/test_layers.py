"""The package's import layers point one way (read from the source with ``ast``; nothing is imported).

    config, utils  <-  data, model_zoo  <-  modeling, convert  <-  autolabel, evaluation, export, report
        <-  engine  <-  pipelines  <-  cli

A module may import its own layer's package and any lower layer; never a higher layer, never another
package of its own layer (so that no two packages can import each other), and never a wsis_d2 module
inside a function (the usual way to hide a cycle).
"""
import ast
from collections import defaultdict
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "wsis_d2"

LAYERS = [
    {"config", "utils"},
    {"data", "model_zoo"},
    {"modeling", "convert"},
    {"autolabel", "evaluation", "export", "report"},
    {"engine"},
    {"pipelines"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path):
    """``(imported wsis_d2 module, inside a function)`` for every import statement of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path)
    package = module if _is_package(path) else module.rsplit(".", 1)[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names if a.name.split(".")[0] == "wsis_d2")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "wsis_d2":
                    # `from . import x` imports the submodule x
                    names = [f"{target}.{a.name}" for a in child.names] if not child.module else [target]
                    found.extend((n, inner) for n in names)
            visit(child, inner)

    visit(tree, False)
    return found


def _sources():
    return sorted(PACKAGE_ROOT.rglob("*.py"))


def _top(module: str) -> str:
    """The top-level part of wsis_d2 a module belongs to (``wsis_d2.modeling.sim.loss`` -> ``modeling``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_part_has_a_layer():
    tops = {_top(_module_name(p)) for p in _sources()} - {""}
    tops |= {p.name for p in PACKAGE_ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert tops <= set(RANK), f"give these a layer in tests/test_layers.py: {sorted(tops - set(RANK))}"


def test_imports_point_down():
    wrong = []
    for path in _sources():
        module = _module_name(path)
        top = _top(module)
        if not top:  # wsis_d2/__init__.py composes the registration of every layer
            continue
        for target, in_function in _imports(path):
            target_top = _top(target)
            if in_function:
                wrong.append(f"{module} imports {target} inside a function")
            elif not target_top:
                wrong.append(f"{module} imports the wsis_d2 package itself")
            elif target_top != top and RANK[target_top] >= RANK[top]:
                wrong.append(f"{module} ({top}, layer {RANK[top]}) imports {target} "
                             f"({target_top}, layer {RANK[target_top]})")
    assert not wrong, "\n".join(wrong)


def test_lower_layers_never_import_the_tools_above_them():
    # the wording of the rule, checked on its own
    for path in _sources():
        if _top(_module_name(path)) in ("config", "data", "modeling"):
            for target, _ in _imports(path):
                assert _top(target) not in ("engine", "cli", "pipelines", "autolabel"), (path, target)


def _package_of(module: str, path_is_package: bool) -> str:
    return module if path_is_package else module.rsplit(".", 1)[0]


def _cycles(graph):
    """Every cycle of a directed graph as a list of nodes (one per strongly connected component)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def _package_graph():
    """package -> packages its modules import (a module's own package and its parents left out)."""
    packages = {_package_of(_module_name(p), _is_package(p)) for p in _sources()}
    graph = defaultdict(set)
    for path in _sources():
        source = _package_of(_module_name(path), _is_package(path))
        if source == "wsis_d2":
            continue
        for target, _ in _imports(path):
            # the deepest package holding the target
            while target not in packages:
                target = target.rsplit(".", 1)[0]
            if target != source and not source.startswith(target + "."):
                graph[source].add(target)
        graph.setdefault(source, set())
    return graph


def test_no_package_level_cycle():
    assert _cycles(_package_graph()) == []


def test_the_cycle_finder_finds_cycles():
    graph = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles(defaultdict(set, {"a": {"b"}, "b": set()})) == []


def test_the_import_reader_sees_relative_and_function_imports(tmp_path):
    pkg = tmp_path / "wsis_d2" / "data"
    pkg.mkdir(parents=True)
    (tmp_path / "wsis_d2" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .views import x\n")
    (pkg / "views.py").write_text("from ..config import y\nimport os\n"
                                  "def f():\n    from ..engine import z\n    from . import rle\n")
    global PACKAGE_ROOT
    saved, PACKAGE_ROOT = PACKAGE_ROOT, tmp_path / "wsis_d2"
    try:
        assert _imports(pkg / "__init__.py") == [("wsis_d2.data.views", False)]
        assert _imports(pkg / "views.py") == [("wsis_d2.config", False), ("wsis_d2.engine", True),
                                              ("wsis_d2.data.rle", True)]
    finally:
        PACKAGE_ROOT = saved

