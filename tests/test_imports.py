"""Every module of the package imports on its own, and the package has no import circle.

Each module is imported alone in a fresh interpreter (so one module's import cannot hide another's missing one), and
the imports inside `siamtrack`, at module level and inside functions alike, are read with `ast` and searched for a
cycle: a lazy import that closes a circle is still a circle, only one that fails later.
"""
import ast
import importlib.util
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "siamtrack"
# Modules that need an optional extra to import at all.
OPTIONAL = {"siamtrack.eval.got10k_adapter": "got10k"}


def _modules():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()


def _imports(name):
    """The siamtrack modules `name` imports anywhere in its source."""
    path, is_package = MODULES[name]
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + (node.module.split(".") if node.module else []))
            else:
                base = node.module
            for a in node.names:
                # `from . import zoo` names a module; `from .api import load_model` names a module's attribute
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def _cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_import_graph_is_read():
    graph = {m: _imports(m) for m in MODULES}
    assert "siamtrack.loader" in graph["siamtrack.api"]
    assert "siamtrack.zoo" in graph["siamtrack.api"]           # `from . import zoo`
    assert "siamtrack.models" in graph["siamtrack.loader"]     # `from .models import build_model`
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_inside_the_package():
    cycle = _cycle({m: _imports(m) for m in MODULES})
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_alone(name):
    extra = OPTIONAL.get(name)
    if extra and importlib.util.find_spec(extra) is None:
        pytest.skip(f"{name} needs {extra}")
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
