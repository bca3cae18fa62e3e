"""Keep every notebook's Colab entry uniform, written from the repository named in ``_config.yml``
(the one place the address lives; the book's launch buttons read it too):

- the badge: one Markdown cell tagged ``colab-badge`` at the top of every notebook (the
  chapters in ``notebooks/`` and the notebook pages in ``book/``), pointing at the notebook in
  the repository;
- the setup cell: one code cell tagged ``colab-setup`` right before the ``parameters`` cell of
  every notebook (after the badge and the title). In Colab it shallow-clones the
  repository, installs the helpers from the clone and works in it, so the committed
  ``results/`` registry is found and a chapter opens with the recorded runs in seconds.

    python tools/badges.py          # add or fix badges and setup cells (idempotent)
    python tools/badges.py --check  # exit 1 and list what is off, change nothing

A fix is a read-modify-write of the notebook's JSON: only those two cells change (and their
position); every other cell, output and metadata stays byte for byte as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TAG = "colab-badge"
SETUP_TAG = "colab-setup"
# setup cells written before the tag existed are recognised by this line
SETUP_MARKER = '"google.colab" in sys.modules'


def repository(config: Path | None = None) -> dict:
    """``url``, ``slug`` (owner/name), ``name`` and ``branch`` from ``_config.yml``."""
    repo = yaml.safe_load((config or ROOT / "_config.yml").read_text())["repository"]
    url = repo["url"].rstrip("/").removesuffix(".git")
    slug = url.removeprefix("https://github.com/")
    return {"url": url, "slug": slug, "name": slug.rsplit("/", 1)[-1],
            "branch": repo.get("branch", "main")}


def pages_url(config: Path | None = None) -> str:
    """Where GitHub Pages publishes the book: https://OWNER.github.io/NAME/."""
    owner, name = repository(config)["slug"].split("/", 1)
    return f"https://{owner.lower()}.github.io/{name}/"


def _relative(notebook: Path) -> str:
    return notebook.resolve().relative_to(ROOT).as_posix()


def badge_source(notebook: Path) -> str:
    repo = repository()
    url = (f"https://colab.research.google.com/github/{repo['slug']}/blob/{repo['branch']}/"
           f"{_relative(notebook)}")
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_source(notebook: Path) -> str:
    """The setup cell; its lines fit the width of a code block on the book's pages."""
    repo = repository()
    folder = Path(_relative(notebook)).parent.as_posix()
    return "\n".join([
        "# Colab: clone the repository with its recorded results, install the helpers",
        "# from it, and the page opens with the recorded runs in seconds, even though",
        "# they were made from other data and weights sources (the page names them).",
        "# Elsewhere `make install` did this already. To retrain on the Colab GPU with",
        "# the real CIFAR-10 and ImageNet weights, put a fresh results folder here:",
        "# os.environ[\"DCAI_RESULTS_DIR\"] = \"/content/runs\"",
        "import os",
        "import sys",
        "",
        f'REPOSITORY = "{repo["url"]}"',
        f'CLONE = "/content/{repo["name"]}"',
        'if "google.colab" in sys.modules:',
        "    if not os.path.isdir(CLONE):",
        f"        !git clone --depth 1 --branch {repo['branch']} {{REPOSITORY}} {{CLONE}}",
        "    %pip install -q -e {CLONE}",
        "    sys.path.insert(0, CLONE)",
        '    os.environ.setdefault("DCAI_ANY_SOURCE", "1")',
        f'    os.chdir(f"{{CLONE}}/{folder}")',
    ])


# Pages for reading, not for running in Colab: no badge, no setup cell.
READING_PAGES = ("intro.ipynb", "closing_thoughts.ipynb")


def notebooks() -> list[Path]:
    """The chapter notebooks and the book's notebook pages (not the landing and closing
    pages, which only summarise the records)."""
    pages = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        p for p in (ROOT / "book").glob("*.ipynb") if p.name not in READING_PAGES)
    return [p for p in pages if not p.name.startswith(".")]  # not the runner's temporary copies


# --- the notebook as JSON -------------------------------------------------------------------------

def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _is_badge(cell: dict) -> bool:
    return TAG in _tags(cell)


def _is_setup(cell: dict) -> bool:
    return cell["cell_type"] == "code" and (SETUP_TAG in _tags(cell) or SETUP_MARKER in _text(cell))


def _is_parameters(cell: dict) -> bool:
    return "parameters" in _tags(cell)


def _read(notebook: Path) -> tuple[dict, str]:
    text = notebook.read_text(encoding="utf-8")
    return json.loads(text), text


def problems(notebook: Path) -> list[str]:
    """What is off with the notebook's badge and setup cell (empty when all is right)."""
    nb, _ = _read(notebook)
    cells = nb["cells"]
    found = []
    badges = [c for c in cells if _is_badge(c)]
    if not badges:
        found.append("no Colab badge")
    elif len(badges) > 1:
        found.append(f"{len(badges)} Colab badges")
    elif cells[0] is not badges[0]:
        found.append("the Colab badge is not the first cell")
    elif _text(badges[0]) != badge_source(notebook):
        found.append(f"the badge does not point at {badge_source(notebook)}")
    setups = [c for c in cells if _is_setup(c)]
    parameters = [i for i, c in enumerate(cells) if _is_parameters(c)]
    if not setups:
        found.append("no Colab setup cell")
    elif len(setups) > 1:
        found.append(f"{len(setups)} Colab setup cells")
    else:
        setup = setups[0]
        if _text(setup) != setup_source(notebook):
            install = [line.strip() for line in _text(setup).splitlines()
                       if any(word in line for word in ("REPOSITORY =", "git+", "pip install"))]
            found.append("the setup cell is not the one _config.yml gives"
                         + (f" (it has: {' / '.join(install)})" if install else ""))
        if SETUP_TAG not in _tags(setup):
            found.append(f"the setup cell is not tagged {SETUP_TAG}")
        if parameters and cells.index(setup) != parameters[0] - 1:
            found.append("the setup cell is not right before the parameters cell")
    if not parameters:
        found.append("no parameters cell")
    return found


def fix(notebook: Path) -> bool:
    """Put the right badge and setup cell in place; True when the file had to change."""
    nb, before = _read(notebook)
    cells = nb["cells"]
    with_ids = (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5)

    # the badge: the first cell, and only there
    badges = [c for c in cells if _is_badge(c)]
    cells[:] = [c for c in cells if not _is_badge(c)]
    badge = badges[0] if badges else {"cell_type": "markdown", "metadata": {"tags": [TAG]},
                                      "source": []}
    if with_ids:
        badge.setdefault("id", "colab-badge")
    badge["source"] = _lines(badge_source(notebook))
    cells.insert(0, badge)

    # the setup cell: right before the parameters cell (after the badge and the title)
    setups = [c for c in cells if _is_setup(c)]
    cells[:] = [c for c in cells if not _is_setup(c)]
    setup = setups[0] if setups else {"cell_type": "code", "execution_count": None,
                                      "metadata": {"tags": []}, "outputs": [], "source": []}
    if with_ids:
        setup.setdefault("id", "colab-setup")
    tags = setup.setdefault("metadata", {}).setdefault("tags", [])
    if SETUP_TAG not in tags:
        tags.append(SETUP_TAG)
    setup["source"] = _lines(setup_source(notebook))
    parameters = [i for i, c in enumerate(cells) if _is_parameters(c)]
    if parameters:
        cells.insert(parameters[0], setup)
    else:  # no parameters cell: after the badge and the title
        cells.insert(min(len(cells), 2), setup)

    # write it back the way nbformat does (one-space indent, sorted keys), keeping the ending
    after = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False)
    if before.endswith("\n"):
        after += "\n"
    if after == before:
        return False
    notebook.write_text(after, encoding="utf-8")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    parser.add_argument("notebook", nargs="*", type=Path, help="default: every notebook")
    args = parser.parse_args(argv)
    wrong = {}
    for notebook in args.notebook or notebooks():
        found = problems(notebook)
        if found:
            wrong[notebook] = found
            if not args.check:
                fix(notebook)
                print(f"fixed {_relative(notebook)}: " + "; ".join(found))
    if args.check and wrong:
        for notebook, found in wrong.items():
            print(f"{_relative(notebook)}: " + "; ".join(found), file=sys.stderr)
        print(f"Colab badge or setup cell off in {len(wrong)} notebook(s): run "
              "`python tools/badges.py` (the address comes from _config.yml)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
