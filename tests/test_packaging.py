"""A built wheel is complete: every module ships and imports with the source tree out of the way."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Run in a fresh interpreter: drop the editable install's finder and the source tree from the
# import path, so that only the wheel's files can be imported.
CHECK = r"""
import importlib, runpy, sys
from pathlib import Path
site, repo = sys.argv[1], Path(sys.argv[2]).resolve()
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path[:] = [site] + [p for p in sys.path if p and Path(p).resolve() != repo]
for name in ("speechbrain_fdnf.inference", "speechbrain_fdnf.data.synthesize", "speechbrain_fdnf.corpus.synthesize", "speechbrain_fdnf.lobes",
             "speechbrain_fdnf.brain", "speechbrain_fdnf.evaluation", "speechbrain_fdnf.convert"):
    module = importlib.import_module(name)
    assert module.__file__.startswith(site), (name, module.__file__)
for command in ("speechbrain_fdnf.corpus.synthesize", "speechbrain_fdnf.data.synthesize", "speechbrain_fdnf.convert"):
    sys.argv = [command, "--help"]
    try:
        runpy.run_module(command, run_name="__main__")
    except SystemExit as done:
        assert done.code in (0, None), (command, done.code)
from speechbrain_fdnf.corpus.sentences import GRAMMAR_FILE, sentence_pool
assert str(GRAMMAR_FILE).startswith(site) and len(sentence_pool(450, 1890)[2]) == 1890  # the packaged grammar
print("wheel ok:", importlib.import_module("speechbrain_fdnf").__file__)
"""


def test_the_wheel_ships_every_module_and_imports_without_the_source_tree(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("speechbrain_fdnf-*.whl")
    package = ROOT / "speechbrain_fdnf"
    source = {str(p.relative_to(ROOT)) for p in [*package.rglob("*.py"), *package.rglob("*.json")]}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith((".py", ".json"))}
    assert source <= shipped, f"missing from the wheel: {sorted(source - shipped)}"

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run([sys.executable, "-c", CHECK, str(site), str(ROOT)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-3000:]
    assert f"wheel ok: {site}" in check.stdout
