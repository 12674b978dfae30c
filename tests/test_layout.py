"""The package's shape: five parts (video, model, batch, export, server), and no import cycle, counting
imports in functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "smolvlm_video"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _runtime_imports(node: ast.AST) -> Iterator[ast.ImportFrom | ast.Import]:
    """Every import a module can run, at any depth (inside functions too), but not under TYPE_CHECKING."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from (i for branch in child.orelse for i in _runtime_imports(branch))
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _runtime_imports(child)


def imported_modules(name: str) -> set[str]:
    """The package's modules that module `name` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
            continue
        base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        named = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
        found |= named or ({target} & MODULES.keys())
    return found - {name}


def find_cycle() -> list[str] | None:
    graph = {name: imported_modules(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            if cycle := visit(target, [*path, name]):
                return cycle
        done.add(name)
        return None

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), None)


def test_no_import_cycle_counting_imports_inside_functions():
    assert find_cycle() is None, " -> ".join(find_cycle() or [])


def test_the_finder_sees_a_cycle_through_a_function_level_import(monkeypatch, tmp_path):
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import y\n")
    fake = {"smolvlm_video.a": tmp_path / "a.py", "smolvlm_video.b": tmp_path / "b.py"}
    monkeypatch.setitem(globals(), "MODULES", fake)
    assert find_cycle() == ["smolvlm_video.a", "smolvlm_video.b", "smolvlm_video.a"]


def test_the_core_is_five_parts_and_the_top_level_is_as_asked():
    parts = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert {"video", "model", "batch", "export", "server"} <= parts
    assert len(list(PACKAGE.glob("*.py"))) <= 7  # what is shared by all three: errors, options, version, ...
    top = {path.name for path in ROOT.iterdir() if not path.name.startswith(".")}
    expected = {"demo", "smolvlm_video", "cli", "examples", "tests", "app.py", "pyproject.toml", "benchmarks"}
    assert expected <= top


def test_the_wheel_lists_every_package_of_the_core():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(path) for path in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml's packages: {sorted(found - listed)}"


@pytest.mark.parametrize(
    ("modules", "not_loaded"),
    [
        ("smolvlm_video.video, smolvlm_video.cli.main", ["torch", "transformers", "pyarrow"]),
        ("smolvlm_video.export.exporting", ["torch", "transformers"]),
    ],
)
def test_what_these_modules_leave_unloaded(modules, not_loaded):
    code = f"import sys, {modules}; print(*[name in sys.modules for name in {not_loaded!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"] * len(not_loaded)


# What the app, run from requirements.txt alone, does not import: the CLI's libraries, and decord (PyAV
# decodes where it is missing).
NOT_FOR_THE_SPACE = {"click", "rich", "decord"}


def test_the_space_requirements_hold_what_the_app_needs():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    space = {
        r.name.lower(): r
        for r in (Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip())
    }
    needed = {Requirement(d).name.lower() for d in project["dependencies"]} - NOT_FOR_THE_SPACE
    needed |= {"scenedetect", "gradio", "spaces"}  # shots in the Analyze tab; MCP comes with gradio's extra
    assert needed <= space.keys(), f"requirements.txt lacks {sorted(needed - space.keys())}"
    assert not space.keys() - needed - NOT_FOR_THE_SPACE - {"opencv-python-headless"}, (
        "requirements.txt holds extras"
    )
    front_matter = (ROOT / "README.md").read_text(encoding="utf-8").split("---")[1]
    sdk = next(
        line.split(":")[1].strip() for line in front_matter.splitlines() if line.startswith("sdk_version:")
    )
    assert space["gradio"].extras == {"mcp"} and str(space["gradio"].specifier) == f"=={sdk}"
