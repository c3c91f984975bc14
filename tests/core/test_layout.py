"""The tree's layers, read from the source itself: every import of every module under demod_voice/
(in functions too; ``if TYPE_CHECKING:`` blocks are not run, so they do not count).

* an engine (``demod_voice/engines/<name>/``) imports nothing from ``server/``;
* the front ends (``wyoming/``, ``batch/``, ``server/``, ``commands/``) import no engine module: they reach
  engines through ``demod_voice.synthesis.registry`` only;
* the rooms (each top-level module, each package, each engine folder) import each other without a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import demod_voice

PACKAGE = Path(demod_voice.__file__).parent
FRONT_ENDS = ("wyoming", "batch", "server", "commands")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _resolve(name: str) -> str | None:
    """The module of ours that importing ``name`` loads (``a.b.c`` may name an attribute of ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = {_resolve(n) for n in names if n.split(".")[0] == "demod_voice"}
    return {m for m in found if m and m != module}


GRAPH = {module: imports(module) for module in MODULES}


def room(module: str) -> str:
    """``engines.<name>`` for an engine's modules, the package for other packages, else the module."""
    parts = module.split(".")[1:]
    if len(parts) >= 2 and parts[0] == "engines":
        return ".".join(parts[:2])
    return parts[0] if parts else ""


def test_the_graph_is_read():
    assert len(MODULES) > 100
    assert "demod_voice.synthesis.registry" in GRAPH["demod_voice.cli"]
    assert "demod_voice.synthesis.jobs" in GRAPH["demod_voice.engines.piper.plugin"]
    assert any(room(m) == "engines.piper" for m in MODULES)


def test_every_engine_is_one_folder():
    from demod_voice.synthesis import registry

    for name, module in {**registry.ENGINES, **registry.FAMILIES}.items():
        assert module.startswith("demod_voice.engines.") and module.endswith(".plugin"), (name, module)
        assert module in MODULES, module
        for command in getattr(__import__(module, fromlist=["x"]), "COMMANDS", ()):
            assert room(command) == room(module), (name, command)
    assert not list((PACKAGE / "adapters").glob("*.py"))
    assert not [p for p in (PACKAGE / "engines").glob("*.py") if p.name not in ("__init__.py", "base.py")]


def test_no_engine_imports_the_server():
    bad = [(m, t) for m, targets in GRAPH.items() if room(m).startswith("engines.")
           for t in targets if room(t) == "server"]
    assert not bad, bad


def test_front_ends_import_no_engine():
    bad = [(m, t) for m, targets in GRAPH.items() if room(m) in FRONT_ENDS
           for t in targets if t.startswith("demod_voice.engines")]
    assert not bad, bad


def test_no_circles_between_rooms():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            a, b = room(module), room(target)
            if a and b and a != b:
                edges[a].add(b)
    circles = _cycles(edges)
    why = {tuple(c): sorted(f"{m} -> {t}" for m, ts in GRAPH.items() for t in ts
                            if room(m) in c and room(t) in c and room(m) != room(t)) for c in circles}
    assert not circles, why


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one room (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_every_plugin_keeps_the_contract():
    from demod_voice.synthesis import registry
    from demod_voice.synthesis.contract import Converter, TextToSpeech

    for name in registry.ENGINES:
        plugin = registry.module(name)
        expected = TextToSpeech if plugin.KIND == "tts" else Converter
        assert isinstance(plugin, expected), (name, expected.__name__)
