"""Keep every notebook's Colab badge uniform: one Markdown cell tagged ``colab-badge`` at the
top, pointing at the notebook's path in the repository named in ``_config.yml``.

    python tools/badges.py          # add or fix badges (idempotent)
    python tools/badges.py --check  # exit 1 and name the notebooks whose badge is off
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
TAG = "colab-badge"


def badge_source(notebook: Path) -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    slug = config["url"].removeprefix("https://github.com/").rstrip("/")
    relative = notebook.resolve().relative_to(ROOT).as_posix()
    url = f"https://colab.research.google.com/github/{slug}/blob/{config['branch']}/{relative}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def fix(notebook: Path) -> bool:
    """Put the right badge in place; True when the file had to change."""
    nb = nbformat.read(notebook, as_version=4)
    wanted = badge_source(notebook)
    badges = [c for c in nb.cells if TAG in c.get("metadata", {}).get("tags", [])]
    if len(badges) == 1 and nb.cells[0] is badges[0] and badges[0].source == wanted:
        return False
    nb.cells = [c for c in nb.cells if c not in badges]
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(wanted, metadata={"tags": [TAG]}))
    nbformat.write(nb, notebook)
    return True


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    wrong = []
    for notebook in notebooks():
        nb = nbformat.read(notebook, as_version=4)
        first = nb.cells[0] if nb.cells else None
        ok = (first is not None and TAG in first.get("metadata", {}).get("tags", [])
              and first.source == badge_source(notebook)
              and sum(TAG in c.get("metadata", {}).get("tags", []) for c in nb.cells) == 1)
        if not ok:
            wrong.append(notebook)
            if not args.check:
                fix(notebook)
    if args.check and wrong:
        print("Colab badge missing or off in: " + ", ".join(p.name for p in wrong)
              + " - run `python tools/badges.py`", file=sys.stderr)
        return 1
    for p in wrong:
        print(f"fixed badge: {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
