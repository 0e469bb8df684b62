"""The house rules the layout keeps: no import loop between modules at import time, the
core never imports a connector, and the connector kit never imports the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"omnisync": ROOT / "omnisync", "omnisync_connectors": ROOT / "connectors"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(module: str) -> set[str]:
    """Modules ``module`` imports when it is imported (not in functions, not for typing)."""
    path = MODULES[module]
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                keep = len(base) - node.level + (1 if path.name == "__init__.py" else 0)
                name = ".".join(base[:keep] + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            subs = {f"{name}.{a.name}" for a in node.names} & MODULES.keys()
            out.update(subs or ({name} & MODULES.keys()))
    return out - {module}


GRAPH = {module: _imports(module) for module in MODULES}


def test_no_import_loop() -> None:
    seen: dict[str, int] = {}  # 1 visiting, 2 done
    loops: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for dep in sorted(GRAPH[module]):
            if seen.get(dep) == 1:
                loops.append([*path[path.index(dep) :], dep])
            elif dep not in seen:
                visit(dep, [*path, dep])
        seen[module] = 2

    for module in sorted(MODULES):
        if module not in seen:
            visit(module, [module])
    assert not loops, f"import loops: {loops}"


def test_the_kit_never_imports_the_pipeline() -> None:
    pipeline = {
        "check",
        "cli",
        "diff",
        "guard",
        "load",
        "pipeline",
        "plan",
        "push",
        "report",
        "store",
    }
    offenders = {
        (module, dep)
        for module, deps in GRAPH.items()
        if module.startswith("omnisync.sdk")
        for dep in deps
        if dep.split(".")[1] in pipeline
    }
    assert not offenders, offenders
