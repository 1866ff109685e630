"""Installed import names: edgepose's layers install under ``edgepose.*`` and nothing else.

A fresh venv outside the repository gets edgepose with ``pip install --no-deps`` (regular
and editable); its dependencies come from the test's own environment through a ``.pth``
line (so no multi-GB torch install), which adds that site-packages folder to ``sys.path``
without running its ``.pth`` hooks (the test environment's own editable edgepose stays
inert). Then ``import realtime / engines / calibration`` must not find edgepose code, and
``edgepose`` with every layer, and ``edgepose demo``, must work.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = r"""
import importlib, sys
for name in ("realtime", "engines", "calibration"):
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError:
        continue
    assert "edgepose" not in (getattr(mod, "__file__", "") or ""), (name, mod.__file__)
    print("third-party", name, getattr(mod, "__file__", None))
import edgepose, edgepose.engines, edgepose.calibration, edgepose.realtime, edgepose.app.cli
import edgepose.engines.backend, edgepose.realtime.capture, edgepose.calibration.qdq
print("ok", edgepose.__file__)
"""


def make_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    py = where / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib.stdout.strip()) / "edgepose_test_deps.pth").write_text("\n".join(deps) + "\n")
    return py


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_fresh_venv_install(tmp_path, editable):
    py = make_venv(tmp_path / "venv")
    src = ROOT
    if not editable:  # a regular build writes build/ beside the sources: build a copy
        import shutil

        src = tmp_path / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
        for name in ("edgepose", "engines", "calibration", "realtime"):
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [str(py), "-m", "pip", "install", "-q", "--no-deps"]
    cmd += ["-e", str(src)] if editable else [str(src)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    r = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, cwd=outside,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    where = r.stdout.strip().splitlines()[-1]
    if editable:
        assert str(ROOT / "edgepose") in where
    else:
        assert str(tmp_path / "venv") in where, where
    if not editable:  # non-editable: nothing of edgepose's under a bare top-level name
        purelib = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
        for bare in ("realtime", "engines", "calibration"):
            assert not (purelib / bare).exists(), f"{bare}/ installed at the top level"
    exe = tmp_path / "venv" / "bin" / "edgepose"
    r = subprocess.run([str(exe), "demo", "--headless", "--frames", "10", "--quiet"],
                       capture_output=True, text=True, cwd=outside, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
