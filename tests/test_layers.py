"""The layering contract (pyproject.toml, [tool.importlinter]) holds, checked by import-linter.

The repository keeps engines/, calibration/ and realtime/ at the top level and installs them
as edgepose.engines / .calibration / .realtime (setuptools package-dir). import-linter walks
the installed package's folder, so the test lays the package out as a wheel would (a copy
of the .py files, mapped by the same package-dir table) and runs ``lint-imports`` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def lay_out(dest: Path) -> Path:
    """Copy the package's .py files to ``dest`` in their installed layout; returns dest."""
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    for pkg in PYPROJECT["tool"]["setuptools"]["packages"]:
        parts = pkg.split(".")
        src = None
        for i in range(len(parts), 0, -1):  # the longest mapped prefix wins
            prefix = ".".join(parts[:i])
            if prefix in mapping:
                src = ROOT / mapping[prefix] / Path(*parts[i:])
                break
        src = src or ROOT / Path(*parts)
        out = dest / Path(*parts)
        out.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.py"):
            shutil.copyfile(f, out / f.name)
    shutil.copyfile(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint(tree: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(exe), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)


def test_layers_contract_holds(tmp_path):
    r = lint(lay_out(tmp_path / "pkg"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_contract_catches_engines_importing_calibration(tmp_path):
    tree = lay_out(tmp_path / "pkg")
    bad = tree / "edgepose" / "engines" / "trt_build.py"
    bad.write_text(bad.read_text() + "\nfrom edgepose.calibration import qdq  # violation\n")
    r = lint(tree)
    assert r.returncode != 0
    assert "edgepose.engines.trt_build -> edgepose.calibration.qdq" in r.stdout, r.stdout[-2000:]


def test_contract_catches_core_importing_the_app(tmp_path):
    tree = lay_out(tmp_path / "pkg")
    bad = tree / "edgepose" / "train.py"
    bad.write_text(bad.read_text() + "\nimport edgepose.app.cli  # violation\n")
    r = lint(tree)
    assert r.returncode != 0 and "edgepose.train -> edgepose.app.cli" in r.stdout


@pytest.mark.parametrize("module,line,edge", [
    ("models/pose_model.py", "from edgepose import train", "edgepose.models.pose_model -> edgepose.train"),
    ("coords.py", "import edgepose.topdown", "edgepose.coords -> edgepose.topdown"),
    ("data/datasets.py", "from edgepose.config import DataConfig",
     "edgepose.data.datasets -> edgepose.config"),
])
def test_contract_catches_an_upward_import_between_core_layers(module, line, edge, tmp_path):
    """Issue 31: the core's own layers are ordered (models below training, the coordinate
    convention below the top-down path, data below the config: the old cycle)."""
    tree = lay_out(tmp_path / "pkg")
    bad = tree / "edgepose" / module
    bad.write_text(bad.read_text() + f"\n{line}  # violation\n")
    r = lint(tree)
    assert r.returncode != 0 and edge in r.stdout, r.stdout[-2000:]


def cli_internals(source: str) -> list[str]:
    """Modules under edgepose.app.commands (the CLI's private command code) that
    ``source`` imports, at any depth (function-level imports included)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n.startswith("edgepose.app.commands")][:1]
    return found


def test_benchmarks_use_the_api_not_cli_internals():
    """Benchmarks reach poses through the library (the API's predict / predict_many, the
    top-down module), or run the CLI as a user does (``edgepose.app.cli.main``), never a
    command's private classes: those change with the CLI and broke a benchmark once."""
    bad = {p.name: cli_internals(p.read_text()) for p in (ROOT / "benchmarks").glob("*.py")}
    assert not {k: v for k, v in bad.items() if v}
    # the check sees an import inside a function, as the broken benchmark had it
    assert cli_internals("def f():\n    from edgepose.app.commands.predict import Batcher\n")


def unresolved_imports(source: str) -> list[str]:
    """``from edgepose... import name`` / ``import edgepose...`` statements of ``source``
    (function-level ones included) that do not resolve against the installed package."""
    import ast
    import importlib

    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and \
                (node.module or "").startswith("edgepose"):
            try:
                mod = importlib.import_module(node.module)
            except ImportError:
                bad.append(node.module)
                continue
            for alias in node.names:
                if hasattr(mod, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    bad.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgepose"):
                    try:
                        importlib.import_module(alias.name)
                    except ImportError:
                        bad.append(alias.name)
    return bad


@pytest.mark.parametrize("folder", ["benchmarks", "scripts"])
def test_benchmark_and_script_imports_resolve(folder):
    """Renames in the package (issue 31 moved a dozen modules) reach the scripts no test
    runs end to end: every edgepose import they make, at any depth, still resolves."""
    bad = {p.name: unresolved_imports(p.read_text()) for p in (ROOT / folder).glob("*.py")}
    assert not {k: v for k, v in bad.items() if v}
    assert unresolved_imports("def f():\n    from edgepose.render_heatmaps import x\n")
