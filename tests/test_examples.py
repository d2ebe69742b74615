"""The scripts in examples/ run as a user runs them: the project's python in a subprocess, from an
unrelated folder, writing only into the work folder they are given (or a temporary one)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# script -> a line its output must have when it succeeds
KEY_LINES = {
    "convert_and_run_keras.py": "OK: the GPU's output matches Keras'",
    "fine_tune_and_save_for_tfjs.py": "OK: the reloaded model predicts the same",
    "compare_adapters.py": "adapter(s) agree with the reference and with each other",
}


def run_example(script: str, cwd: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_example_is_listed_here_and_in_its_readme():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(KEY_LINES), "add the example (and the line it prints on success) to KEY_LINES"
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"examples/{script}" in readme, f"examples/README.md has no command for {script}"


@pytest.mark.parametrize("script", sorted(KEY_LINES))
def test_example_runs_and_writes_only_into_its_work_folder(script, tmp_path):
    cwd, work = tmp_path / "cwd", tmp_path / "work"
    cwd.mkdir()
    out = run_example(script, cwd, work)
    assert out.returncode == 0, f"{script} failed:\n{out.stdout}\n{out.stderr}"
    assert KEY_LINES[script] in out.stdout, out.stdout
    assert any(work.iterdir()), f"{script} wrote nothing into its work folder"
    assert not any(cwd.iterdir()), f"{script} wrote into the current folder: {sorted(p.name for p in cwd.iterdir())}"


def test_example_without_a_work_folder_cleans_up(tmp_path):
    # the default work folder is a temporary one, removed at the end (the fastest example shows it)
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("wgpu-runtime-example-*"))
    out = run_example("compare_adapters.py", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "OK:" in out.stdout
    assert not any(tmp_path.iterdir())
    assert set(Path(tempfile.gettempdir()).glob("wgpu-runtime-example-*")) <= before


def test_examples_are_not_collected_as_tests():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          str(EXAMPLES)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 5, out.stdout      # pytest's "no tests collected"
