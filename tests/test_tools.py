import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import badges  # noqa: E402


def test_committed_notebooks_have_uniform_badges():
    assert badges.main(["--check"]) == 0


def test_badge_tool_is_idempotent_and_fixes(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "01_baseline.ipynb", as_version=4)
    nb.cells[0].source = "[old badge](https://example.com)"
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("dup", metadata={"tags": [badges.TAG]}))
    copy = tmp_path / "01_baseline.ipynb"
    nbformat.write(nb, copy)
    wanted = "[![Open In Colab](badge.svg)](colab/notebooks/01_baseline.ipynb)"
    monkeypatch.setattr(badges, "badge_source", lambda path: wanted)
    assert badges.fix(copy) is True
    fixed = nbformat.read(copy, as_version=4)
    assert fixed.cells[0].source == wanted
    assert sum(badges.TAG in c.metadata.get("tags", []) for c in fixed.cells) == 1
    assert len(fixed.cells) == len(nb.cells) - 1
    assert badges.fix(copy) is False  # idempotent


def test_badge_points_at_the_notebook_in_the_configured_repository():
    source = badges.badge_source(ROOT / "notebooks" / "05_more_data.ipynb")
    assert "colab.research.google.com/github/" in source
    assert source.endswith("/blob/main/notebooks/05_more_data.ipynb)")


def test_every_notebook_has_a_parameters_cell_and_setup():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + [ROOT / "book/results_overview.ipynb"]:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert 'os.environ.get("DCAI_PROFILE", "full")' in tagged[0].source


def test_committed_outputs_never_come_from_smoke():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + [ROOT / "book/results_overview.ipynb"]:
        text = path.read_text()
        assert "Profile `smoke`" not in text, f"{path.name} has smoke outputs committed"


@pytest.mark.needs_data
def test_runner_executes_a_notebook_in_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "helpers.run", "--profile", "smoke", "--output-dir", str(tmp_path),
         "01_baseline"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "01_baseline.ipynb done" in done.stdout
    nb = nbformat.read(tmp_path / "01_baseline.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "Profile `smoke`" in outputs and "2,236,682 trainable parameters" in outputs
    assert '"output_type": "error"' not in outputs


def test_runner_names_the_failing_cell(tmp_path):
    broken = tmp_path / "99_broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise RuntimeError('boom')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, broken)
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--profile", "smoke",
                           "--output-dir", str(tmp_path / "out"), str(broken)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "99_broken.ipynb" in done.stderr and "boom" in done.stderr


def test_runner_rejects_unknown_notebook():
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--profile", "smoke", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "unknown notebook" in done.stderr


def test_catalog_lists_every_run_of_every_chapter(results_dir):
    done = subprocess.run([sys.executable, "-m", "helpers.catalog", "--profile", "smoke", "--list"],
                          capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "DCAI_RESULTS_DIR": str(results_dir)})
    steps = [line.split("] ", 1)[1] for line in done.stdout.splitlines()]
    # the article grid (3 baseline seeds, 5 noise rates, augmentation, extras, 3 sizes), then
    # the two confident-learning analyses and the test-set audit
    assert len(steps) == 13 + 3
    assert sum(step.startswith("baseline") for step in steps) == 3
    assert any("+10 cat, +10 dog" in step for step in steps)
    assert sum(step.startswith("confident_learning") for step in steps) == 2
    assert all(step.endswith("[to train]") for step in steps if "key=" in step)
    assert not results_dir.exists()  # listing trains nothing
