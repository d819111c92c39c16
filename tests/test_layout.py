"""The package layout rules of docs/architecture.md, checked on the source tree.

- one stage module per subcommand, named like it, and no stage imports another;
- libraries never import a stage; no import cycles between asctool modules;
- ``click`` only in ``cli.py`` and ``cli_support.py``; no module over 700 lines;
- the front end holds no multiprocessing code.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asctool"
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every asctool module ``path`` imports (at module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    modules = _modules()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "asctool")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "asctool":
                continue
            for alias in node.names:  # ``from . import basic`` imports the module, not the package's names
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {m for m in found if m in modules and m != name}


def _third_party(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_subcommand_has_its_stage_module():
    from asctool.cli import cli

    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    commands = {name.replace("-", "_") for name in cli.commands}
    assert commands - stages == set(), "subcommands without a stage module"
    assert stages - commands == set(), "stage modules without a subcommand"


def test_no_stage_imports_another_stage_and_no_library_imports_a_stage():
    offenders = []
    for name, path in _modules().items():
        stage_imports = {m for m in _imports(path) if m.startswith("asctool.stages.")}
        if name.startswith("asctool.stages.") and stage_imports:
            offenders.append(f"{name} imports {sorted(stage_imports)}")
        elif not name.startswith("asctool.stages") and name != "asctool.cli" and stage_imports:
            offenders.append(f"library {name} imports {sorted(stage_imports)}")
    assert offenders == []


def test_no_import_cycles():
    graph = {name: _imports(path) for name, path in _modules().items()}
    # a package's __init__ importing its own submodules is how registries fill; a
    # submodule importing its package's public names back would be a cycle
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_click_only_in_cli():
    """The command-line layer is cli.py (the commands) and cli_support.py (what they share)."""
    users = sorted(name for name, path in _modules().items()
                   if "click" in _third_party(path) and name not in ("asctool.cli", "asctool.cli_support"))
    assert users == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_over_700_lines(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_front_end_has_no_process_code():
    frontend = [p for p in PACKAGE.rglob("*.py") if _module_name(p).startswith("asctool.frontend")]
    assert frontend, "asctool/frontend/ is missing"
    for path in frontend:
        used = _third_party(path) & {"multiprocessing", "concurrent", "ctypes", "threading", "signal"}
        assert used == set(), f"{path.name} imports {sorted(used)}"
