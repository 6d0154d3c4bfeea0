"""The layers of the tree (pyproject's [tool.importlinter] contracts): app above diagrams/scenes above
the stories above the NumPy-only reference, and no import cycles. A back edge fails this test."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout and run.stdout.count("KEPT") >= 3


def test_a_back_edge_is_caught(tmp_path):
    """The contract can fail: a copy of the tree whose reference imports the front end is refused."""
    for name in ("viz", "diagrams", "scenes"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    conv = tmp_path / "viz" / "conv.py"
    conv.write_text(conv.read_text() + "\n\ndef _bad():\n    from viz.app import registry  # noqa\n")
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode != 0 and "BROKEN" in run.stdout, run.stdout[-2000:]
