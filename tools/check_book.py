"""Check the built book: every ``_toc.yml`` entry produced an HTML page, every notebook page
shows its figures, and every image a page refers to exists.

    python tools/check_book.py [--html _build/html]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def check(html_dir: Path) -> list[str]:
    problems = []
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for entry in toc_files(toc):
        page = html_dir / f"{entry}.html"
        if not page.exists():
            problems.append(f"{entry}: no page {page.relative_to(html_dir)}")
            continue
        text = page.read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', text)
        local = [src for src in images if not src.startswith(("http", "data:"))]
        for src in local:
            if not (page.parent / src).resolve().exists():
                problems.append(f"{entry}: missing image {src}")
        source = ROOT / f"{entry}.ipynb"
        if source.exists() and '"image/png"' in source.read_text():
            figures = [s for s in local if "_images/" in s]
            if not figures:
                problems.append(f"{entry}: the notebook has figures but the page shows none")
    if not (html_dir / "index.html").exists():
        problems.append("no index.html")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    problems = check(args.html)
    for problem in problems:
        print(f"book check: {problem}", file=sys.stderr)
    if not problems:
        print(f"book check: all {len(toc_files(yaml.safe_load((ROOT / '_toc.yml').read_text())))} "
              "pages built, figures present")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
