"""Execute the book's notebooks headless with papermill, writing them back with outputs.

    python -m helpers.run [--profile P] [--output-dir DIR] [NOTEBOOK ...]

All notebooks in order by default. Experiments come from the registry, so a rerun after a
crash continues where it stopped. On failure, names the notebook and the failing cell and
exits non-zero (the notebook is written back with the error shown in that cell).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from helpers.profiles import get_profile
from helpers.sources import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
EXTRA_PAGES = [REPO_ROOT / "book" / "results_overview.ipynb"]


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


def _failing_cell(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for n, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"cell {n} ({first_line[:60]!r}): {output.get('ename')}: {output.get('evalue')}"
    return "unknown cell"


def execute(path: Path, profile: str, output: Path | None = None) -> None:
    import papermill

    output = output or path
    papermill.execute_notebook(
        str(path), str(output), parameters={"profile": profile}, cwd=str(path.parent),
        kernel_name="python3", progress_bar=False, log_output=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="names or paths (default: all, in order)")
    parser.add_argument("--profile", help="smoke, quick or full (default: $DCAI_PROFILE or full)")
    parser.add_argument("--output-dir", type=Path,
                        help="write executed notebooks here instead of back in place")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile).name
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
        except Exception as error:
            where = _failing_cell(output)
            print(f"FAILED: {path.name}, {where}\n({type(error).__name__})", file=sys.stderr)
            return 1
        print(f"[{n}/{len(notebooks)}] {path.name} done in {time.perf_counter() - start:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
