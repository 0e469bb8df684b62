"""The house rules the layout keeps: no import loop between modules at import time (nor in
the core through imports made late, in functions or for typing), the core never imports a
connector, the connector kit never imports the pipeline, the console script starts light,
and every module of CLI commands is registered."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import omnisync.cli

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


def _imports(module: str, *, late: bool = False) -> set[str]:
    """Modules ``module`` imports when it is imported (not in functions, not for typing);
    with ``late``, every import it makes, wherever and whenever."""
    path = MODULES[module]
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree) if late else tree.body:
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


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    seen: dict[str, int] = {}  # 1 visiting, 2 done
    loops: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for dep in sorted(graph[module]):
            if seen.get(dep) == 1:
                loops.append([*path[path.index(dep) :], dep])
            elif dep not in seen:
                visit(dep, [*path, dep])
        seen[module] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])
    return loops


def test_no_import_loop() -> None:
    loops = _loops(GRAPH)
    assert not loops, f"import loops: {loops}"


def test_no_import_loop_even_through_late_imports() -> None:
    # An import in a function or under TYPE_CHECKING hides a loop from Python, not from
    # the reader: the two modules still cannot be understood (or moved) one without the other.
    graph = {m: _imports(m, late=True) & set(MODULES) for m in MODULES}
    loops = _loops(graph)
    assert not loops, f"import loops: {loops}"


def test_the_console_script_starts_light() -> None:
    # Its signal handler is installed before the heavy imports (Typer, DuckDB, the CLI), so
    # a Ctrl-C while they load ends as "interrupted", not as a traceback.
    code = (
        "import sys, omnisync.launch; print('typer' in sys.modules, 'omnisync.cli' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_every_module_of_commands_is_registered() -> None:
    # A module of omnisync/cli/ that ends in COMMANDS is one entry of COMMAND_MODULES.
    def has_commands(path: Path) -> bool:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return any(
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "COMMANDS" for t in node.targets)
            for node in tree.body
        )

    defined = {
        m for m, path in MODULES.items() if m.startswith("omnisync.cli.") and has_commands(path)
    }
    registered = {module.__name__ for module in omnisync.cli.COMMAND_MODULES}
    assert defined == registered
    commands = [c for module in omnisync.cli.COMMAND_MODULES for c in module.COMMANDS]
    assert [c.callback for c in omnisync.cli.app.registered_commands] == commands


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


def test_modules_and_functions_stay_readable() -> None:
    """No module over ~700 lines and no function over 100: past that, a module holds more
    than one job and a function more than one step (split by job, not in halves)."""
    import ast

    long_modules, long_functions = [], []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 750:
            long_modules.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 100:
                    long_functions.append(f"{module}.{node.name}: {size} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions
