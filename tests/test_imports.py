"""The import rules of docs/architecture.md, read from the source with ast: which package may
import which, and no circle among web/'s modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "realtime", "ingest", "workers", "web")

# A package may import itself and these (docs/architecture.md, "Import rules").
ALLOWED = {
    "models": set(),
    "realtime": {"models"},
    "ingest": {"models", "realtime"},
    "workers": {"models", "realtime"},
    "web": {"models", "realtime", "ingest", "workers"},
}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, at the module's top level?) for every import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from web import ops` imports web.ops
            found += [(f"{node.module}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def _modules(package: str) -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p
            for p in (ROOT / package).rglob("*.py")}


def test_packages_import_only_what_the_rules_allow():
    broken = []
    for package in PACKAGES:
        for module, path in _modules(package).items():
            for name, _top in _imports(path):
                target = name.split(".")[0]
                if target in PACKAGES and target != package and target not in ALLOWED[package]:
                    broken.append(f"{module} imports {name}")
    assert not broken, "\n".join(broken)


def test_no_import_circle_among_web_modules():
    modules = _modules("web")
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        for name, _top in _imports(path):
            # the longest prefix of `name` that is a web module (web.ops.routes -> web.ops)
            parts = name.split(".")
            for n in range(len(parts), 1, -1):
                if ".".join(parts[:n]) in modules:
                    graph[module].add(".".join(parts[:n]))
                    break
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)


def test_the_rules_check_finds_a_forbidden_import(tmp_path):
    # The checker itself: an import of web from models is seen (top level and in a function).
    bad = tmp_path / "bad.py"
    bad.write_text("import web.app\n\ndef f():\n    from web import ops\n")
    assert _imports(bad) == [("web.app", True), ("web.ops", False)]
