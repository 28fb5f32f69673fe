"""The published distributions hold the library ``dlbook`` and nothing of the build system:
``python -m build`` (the release workflow's frontend) makes the sdist and, from it, the
wheel out of a copy of the repository, offline (no build isolation: the environment's
setuptools, which must meet pyproject.toml's build requirements); the wheel is installed
into an empty virtual environment and imported there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from tools.library.generate import project_version

REPO = Path(__file__).resolve().parents[1]
VERSION = project_version(REPO)
LIBRARY = sorted(f"dlbook/{path.name}" for path in (REPO / "dlbook").glob("*.py"))
NOT_COPIED = (".git", ".venv", "_build", "build", "dist", "*.egg-info", "__pycache__",
              ".pytest_cache", ".ruff_cache", "artifacts")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``dist/`` of a build of a copy of the working tree (tools/ and tests/ included, so
    that leaving them out is the configuration's doing)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    out = root / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(source)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_wheel_holds_the_library_only(dist):
    wheel = only(dist, "*.whl")
    assert wheel.name == f"dlbook-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"dlbook-{VERSION}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        top_level = archive.read(f"{info}/top_level.txt").decode().split()
    assert top_level == ["dlbook"]
    assert f"\nVersion: {VERSION}\n" in metadata
    assert [n for n in names if not n.startswith(("dlbook/", f"{info}/"))] == []
    # every module of the library, the hand-written _smoke.py included (see pyproject.toml)
    assert sorted(n for n in names if n.startswith("dlbook/")) == LIBRARY
    assert "dlbook/_smoke.py" in LIBRARY and "dlbook/__init__.py" in LIBRARY


def test_sdist_leaves_the_build_system_out(dist):
    sdist = only(dist, "*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert {"pyproject.toml", "README.md", *LIBRARY} <= set(names)
    assert [n for n in names if n.startswith(("tools/", "chapters/", "_build/"))] == []


def test_wheel_installs_into_an_empty_venv_and_imports(dist, tmp_path):
    wheel = only(dist, "*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                              "--no-deps", "--no-index", "--no-cache-dir", "--quiet",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert sorted(p.name for p in site.iterdir()) == ["dlbook", f"dlbook-{VERSION}.dist-info"]
    # "Empty" means: the venv's own site-packages holds the wheel and nothing else. The
    # library's dependencies (torch, numpy, ...) come from this environment's
    # site-packages through PYTHONPATH, where .pth files are not run, so the editable
    # install of this repository (a .pth hook) is not there: dlbook can only be the
    # wheel's, which the child checks by the file it imported.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    child = subprocess.run(
        [str(python), "-c", "import json, dlbook; "
         "print(json.dumps({'file': dlbook.__file__, 'version': dlbook.__version__}))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sorted(deps)),
             "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path),
             "MPLCONFIGDIR": str(tmp_path / "mpl")})
    assert child.returncode == 0, child.stderr[-3000:]
    imported = json.loads(child.stdout.strip().splitlines()[-1])
    assert Path(imported["file"]).parent == site / "dlbook"
    assert imported["version"] == VERSION
