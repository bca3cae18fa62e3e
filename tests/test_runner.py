"""The notebook runner and the notebooks' parameters (issue 15, sections 1 and 6): the
profile comes from the environment only, nothing is injected into a committed notebook, and a
failing run leaves the committed notebook untouched."""

import os
import re
from pathlib import Path

import nbformat
import pytest

from helpers import results, run

INJECTED = "injected-parameters"


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", run.all_notebooks(), ids=lambda p: p.stem)
def test_notebooks_take_the_profile_from_the_environment(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert not [n for n, cell in enumerate(nb.cells) if INJECTED in _tags(cell)], \
        f"{path.name} holds papermill's injected-parameters cell: it would override DCAI_PROFILE"
    parameters = [cell for cell in nb.cells if "parameters" in _tags(cell)]
    assert len(parameters) == 1
    for profile in ("smoke", "quick"):
        monkeypatch.setenv("DCAI_PROFILE", profile)
        namespace = {}
        exec(parameters[0].source, namespace)  # noqa: S102 - the notebook's own parameters
        assert namespace["profile"] == profile
    for n, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell is not parameters[0]:
            assert not re.search(r"^\s*profile\s*=", cell.source, re.M), (path.name, n)
            assert not re.search(r"""\(\s*(["'])(full|quick|smoke)\1""", cell.source), \
                f"{path.name} cell {n} names a profile instead of using `profile`"


def _notebook(path: Path, *sources: str, injected: bool = True) -> bytes:
    cells = [nbformat.v4.new_markdown_cell("# A throwaway page")]
    parameters = nbformat.v4.new_code_cell(
        "import os\nprofile = os.environ.get('DCAI_PROFILE', 'full')")
    parameters.metadata["tags"] = ["parameters"]
    cells.append(parameters)
    if injected:
        stale = nbformat.v4.new_code_cell('# Parameters\nprofile = "full"\n')
        stale.metadata["tags"] = [INJECTED]
        cells.append(stale)
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path.read_bytes()


def test_a_failing_run_leaves_the_notebook_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCAI_PROFILE", "smoke")
    path = tmp_path / "page.ipynb"
    before = _notebook(path, "print(profile)", "x = 1\nraise ValueError('boom')", "print('after')")
    assert run.main(["--profile", "smoke", str(path)]) == 1
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.ipynb"]  # no temporary left
    err = capsys.readouterr().err
    # the failing cell is cell 4 of the committed notebook (markdown, parameters, injected, …)
    assert "page.ipynb, cell 4 ('x = 1'): ValueError: boom" in err


def test_a_successful_run_replaces_the_notebook_without_injecting(tmp_path, monkeypatch):
    monkeypatch.setenv("DCAI_PROFILE", "full")  # execute() sets the profile for its kernel
    path = tmp_path / "page.ipynb"
    _notebook(path, "print(profile, os.environ['DCAI_PROFILE'])")
    path.chmod(0o644)
    run.execute(path, "smoke")
    nb = nbformat.read(path, as_version=4)
    assert not [cell for cell in nb.cells if INJECTED in _tags(cell)]
    assert [cell.source for cell in nb.cells if cell.cell_type == "code"][-1].startswith("print")
    assert nb.cells[-1].outputs[0]["text"] == "smoke smoke\n"
    assert nb.metadata["papermill"]["parameters"] == {"profile": "smoke"}
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.environ["DCAI_PROFILE"] == "full"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.ipynb"]


@pytest.mark.needs_data
def test_the_notebook_test_runs_the_smoke_profile(tmp_path, monkeypatch):
    """What `make test` does to a notebook (nbval runs the committed cells as they are), with
    an empty registry: the notebook trains smoke runs and reads nothing else."""
    from nbclient import NotebookClient

    registry = tmp_path / "registry"
    monkeypatch.setenv("DCAI_PROFILE", "smoke")
    monkeypatch.setenv("DCAI_ONLY_PROFILE", "smoke")
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(registry))
    nb = nbformat.read(run.NOTEBOOK_DIR / "01_baseline.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('profile:', profile)"))
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(run.NOTEBOOK_DIR)}}).execute()
    assert nb.cells[-1].outputs[0]["text"] == "profile: smoke\n"
    assert sorted(p.name for p in registry.iterdir()) == ["smoke"]
    records = list(results.iter_records("smoke"))
    assert records and {r.profile for r in records} == {"smoke"}
    assert "baseline" in {r.name for r in records}
