"""Execute the book's notebooks headless with papermill, writing them back with outputs.

    python -m helpers.run [--profile P] [--output-dir DIR] [NOTEBOOK ...]

All notebooks in order by default. Experiments come from the registry, so a rerun after a
crash continues where it stopped.

The profile reaches the kernels through the environment only (``DCAI_PROFILE``, which every
notebook's ``parameters`` cell reads): nothing is injected into the notebooks, and any
papermill ``injected-parameters`` cell left in a notebook is dropped before it runs. So a
committed notebook holds no hard-coded profile, and the notebook tests run exactly the profile
their environment asks for.

A notebook is executed into a temporary file in the same folder, which replaces the notebook
(``os.replace``) only when every cell succeeded: a failing run leaves the committed notebook
byte-identical, names the failing cell by its index in the committed notebook (with its first
source line, the error's name and value) and exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from helpers.profiles import get_profile
from helpers.sources import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
EXTRA_PAGES = [REPO_ROOT / "book" / f"{name}.ipynb" for name in (
    "experimental_setup", "results_overview", "intro", "closing_thoughts")]
INJECTED_TAG = "injected-parameters"
# TensorFlow's native start-up notes (oneDNN, no CUDA driver) are written by absl straight to
# the process's stderr before its logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot
# silence them (TensorFlow 2.21); the kernel relays them into the first cell that imports it.
# Only these INFO lines and absl's preamble are dropped from executed notebooks; warnings
# and errors (W..., E... lines) stay.
_NATIVE_STARTUP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*)\n?", re.MULTILINE)


class NotebookFailed(RuntimeError):
    """A notebook did not run to the end; the message names the notebook and the cell."""


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) + [p for p in EXTRA_PAGES if p.exists()]


def resolve(names: list[str]) -> list[Path]:
    """Notebook paths from names like ``01_baseline``, ``01_baseline.ipynb`` or a path."""
    known = {p.stem: p for p in all_notebooks()}
    out = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            out.append(path.resolve())
        elif path.stem in known:
            out.append(known[path.stem])
        else:
            raise SystemExit(f"unknown notebook {name!r}: choose from {', '.join(known)}")
    return out


def _is_injected(cell) -> bool:
    return INJECTED_TAG in cell.get("metadata", {}).get("tags", [])


def drop_native_startup_logs(nb) -> None:
    """Remove TensorFlow's native start-up INFO lines (``_NATIVE_STARTUP``) from the stderr
    stream outputs of ``nb`` (an nbformat notebook, changed in place); a stream left empty is
    removed."""
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = _NATIVE_STARTUP.sub("", output.get("text", ""))
                if not output["text"].strip():
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


def _first_line(source: str) -> str:
    lines = source.strip().splitlines()
    return lines[0][:60] if lines else ""


def _describe(index: int, source: str, ename: str, evalue: str) -> str:
    return f"cell {index} ({_first_line(source)!r}): {ename}: {evalue}"


def _error_in(nb, committed_index: list[int]) -> str | None:
    """The first cell of an executed notebook with an error output, described."""
    for n, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return _describe(committed_index[n], cell.source, output.get("ename"),
                                 output.get("evalue"))
    return None


@contextlib.contextmanager
def _environment(**values: str):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path.name


def _mode_for(output: Path) -> int:
    """The permission bits ``output`` has, or those a new file would get (mkstemp's are 0600)."""
    try:
        return output.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def execute(path: Path, profile: str, output: Path | None = None) -> None:
    """Run one notebook with ``DCAI_PROFILE=profile`` and write it, with outputs, to ``output``
    (default: back to ``path``), atomically.

    The kernel runs in the notebook's folder. ``injected-parameters`` cells are dropped; the
    notebook's metadata records the profile (``papermill.parameters.profile``, which
    ``report.chapter_status`` reads). Raises NotebookFailed, naming the failing cell by its
    index in ``path``, when a cell fails or the kernel dies; ``output`` is then untouched."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = Path(path)
    output = Path(output or path)
    nb = nbformat.read(path, as_version=4)
    committed_index = [n for n, cell in enumerate(nb.cells) if not _is_injected(cell)]
    nb.cells = [nb.cells[n] for n in committed_index]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.run-", suffix=".ipynb",
                                    dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        nbformat.write(nb, tmp)
        try:
            with _environment(DCAI_PROFILE=profile):
                papermill.execute_notebook(
                    str(tmp), str(tmp), parameters=None, cwd=str(path.parent),
                    kernel_name="python3", progress_bar=False, log_output=False,
                )
        except PapermillExecutionError as error:
            where = _describe(committed_index[error.cell_index], error.source, error.ename,
                              error.evalue)
            raise NotebookFailed(f"{path.name}, {where}") from error
        except Exception as error:  # the kernel died, a timeout, ...
            where = None
            with contextlib.suppress(Exception):
                where = _error_in(nbformat.read(tmp, as_version=4), committed_index)
            raise NotebookFailed(
                f"{path.name}, {where or 'unknown cell'} ({type(error).__name__}: {error})"
            ) from error
        executed = nbformat.read(tmp, as_version=4)
        executed.cells = [cell for cell in executed.cells if not _is_injected(cell)]
        drop_native_startup_logs(executed)
        meta = executed.metadata.setdefault("papermill", {})
        meta["parameters"] = {"profile": profile}  # passed as DCAI_PROFILE, not injected
        meta["input_path"] = meta["output_path"] = _relative(output)
        nbformat.write(executed, tmp)
        os.chmod(tmp, _mode_for(output))
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="names or paths (default: all, in order)")
    parser.add_argument("--profile", help="smoke, quick or full (default: $DCAI_PROFILE or full)")
    parser.add_argument("--output-dir", type=Path,
                        help="write executed notebooks here instead of back in place")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile).name
    except ValueError as error:
        parser.error(str(error))
    os.environ["DCAI_PROFILE"] = profile  # the kernels inherit it, as do notebooks' defaults
    notebooks = resolve(args.notebooks) if args.notebooks else all_notebooks()
    for n, path in enumerate(notebooks, 1):
        start = time.perf_counter()
        print(f"[{n}/{len(notebooks)}] {path.name} ({profile}) …", flush=True)
        output = args.output_dir / path.name if args.output_dir else path
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            execute(path, profile, output)
        except NotebookFailed as error:
            print(f"FAILED: {error}\n{output} is unchanged.", file=sys.stderr)
            return 1
        print(f"[{n}/{len(notebooks)}] {path.name} done in {time.perf_counter() - start:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
