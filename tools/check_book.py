"""Check the built book, page by page, and report every failure with its page.

    python tools/check_book.py [--html _build/html] [--only pages,search,...] [--list]

Static checks of the HTML (bs4; tools/browser_check.py adds what needs a browser):

  pages       every ``_toc.yml`` entry produced a page, its images exist, and a notebook with
              figures shows them
  search      exactly one search box on the page (the field in the sidebar; the pop-up dialog
              and the narrow-screen icon do not count)
  paths       no absolute machine paths (/work/, /home/, /root/, /tmp/, site-packages, ...)
  nbval       no ``NBVAL`` comment shows
  parameters  no papermill ``# Parameters`` cell shows
  captions    every figure of the content has a caption (figure + figcaption, as ``{figure}``,
              ``{glue:figure}`` and myst-nb's figure cell option make)
  alt         every figure of the content has alt text that says something (not empty, not the
              image's file name or hash)

Exit 1 when any selected check fails; ``--only`` picks checks (comma-separated or repeated) so
they can be enabled one at a time.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent

CHECKS = {
    "pages": "every _toc.yml entry built, its images exist, notebook figures shown",
    "search": "exactly one search box",
    "paths": "no absolute machine paths",
    "nbval": "no NBVAL text",
    "parameters": "no '# Parameters' cell",
    "captions": "every figure has a caption",
    "alt": "every figure has meaningful alt text",
}

# an absolute path of a machine: home folders, scratch, this project's work tree, a venv
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])(?:/(?:work|home|root|tmp|private|Users|opt/conda|content/drive)/[\w.~-]"
    r"|[A-Za-z]:\\(?:Users|work)\\)"
    r"|site-packages|dist-packages|(?<=/)\.venv/")  # inside a path; `.venv/bin/python` commands are fine
# file-name-like alt text: a path or name ending in an image extension, or a long hex hash
FILENAME_ALT = re.compile(r"(?:^|/)[\w.-]+\.(?:png|jpe?g|svg|gif|webp)$|[0-9a-f]{16,}", re.I)


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


def _local(src: str) -> bool:
    return not src.startswith(("http:", "https:", "data:", "//"))


def content_images(soup: BeautifulSoup) -> list:
    """The figures of the page's content: local images inside the article (the Colab badge and
    the theme's logos are links, not figures)."""
    article = soup.find("article") or soup
    return [img for img in article.find_all("img") if _local(img.get("src", ""))]


def visible_text(soup: BeautifulSoup) -> str:
    body = soup.body or soup
    for tag in body.find_all(["script", "style", "noscript", "template"]):
        tag.decompose()
    return body.get_text(" ")


def search_boxes(soup: BeautifulSoup) -> list:
    """Search boxes a reader sees on a wide screen: the theme's search field buttons and any
    search form or input, outside the pop-up <dialog> that they open."""
    found = []
    for el in soup.select("button.search-button-field, form.bd-search, input[type=search]"):
        if el.find_parent("dialog") is not None:
            continue
        if el.name == "input" and el.find_parent("form", class_="bd-search") is not None:
            continue  # counted with its form
        found.append(el)
    return found


def check_page(entry: str, html_dir: Path, checks: set[str]) -> list[tuple[str, str]]:
    """(check, problem) pairs for one page."""
    page = html_dir / f"{entry}.html"
    if not page.exists():
        return [("pages", f"no page {page.relative_to(html_dir)}")] if "pages" in checks else []
    problems = []
    text = page.read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    images = content_images(soup)

    if "pages" in checks:
        for img in soup.find_all("img"):
            src = img.get("src", "")
            if _local(src) and not (page.parent / src).resolve().exists():
                problems.append(("pages", f"missing image {src}"))
        source = ROOT / f"{entry}.ipynb"
        if source.exists() and '"image/png"' in source.read_text(encoding="utf-8"):
            if not any("_images/" in img.get("src", "") for img in images):
                problems.append(("pages", "the notebook has figures but the page shows none"))

    if "search" in checks:
        boxes = search_boxes(soup)
        if len(boxes) != 1:
            where = ", ".join(sorted({(b.find_parent(class_=True) or b).get("class", ["?"])[0]
                                      for b in boxes})) or "none"
            problems.append(("search", f"{len(boxes)} search boxes ({where}), want 1"))

    if "paths" in checks:
        words = visible_text(BeautifulSoup(text, "html.parser"))
        attributes = " ".join(str(value) for tag in soup.find_all(True)
                              for key, value in tag.attrs.items() if key in ("href", "src", "alt"))
        haystack = words + " " + attributes
        snippets = []
        for match in MACHINE_PATH.finditer(haystack):
            start = max(0, match.start() - 30)
            snippets.append(" ".join(haystack[start:match.end() + 40].split()))
        for snippet in list(dict.fromkeys(snippets))[:5]:
            problems.append(("paths", f"machine path: ...{snippet}..."))
        if len(set(snippets)) > 5:
            problems.append(("paths", f"... and {len(set(snippets)) - 5} more machine paths"))

    if "nbval" in checks or "parameters" in checks:
        words = visible_text(BeautifulSoup(text, "html.parser"))
        if "nbval" in checks:
            count = words.count("NBVAL")
            if count:
                problems.append(("nbval", f"'NBVAL' shows {count} time(s)"))
        if "parameters" in checks:
            count = len(re.findall(r"#\s*Parameters\b", words))
            if count:
                problems.append(("parameters", f"'# Parameters' shows {count} time(s)"))

    if "captions" in checks:
        bare = 0
        for img in images:
            figure = img.find_parent("figure")
            caption = figure.find("figcaption") if figure is not None else None
            if caption is None or not caption.get_text(strip=True):
                bare += 1
        if bare:
            problems.append(("captions", f"{bare} of {len(images)} figures without a caption"))

    if "alt" in checks:
        bad = [img for img in images
               if not img.get("alt", "").strip() or FILENAME_ALT.search(img.get("alt", ""))
               or img.get("alt") == img.get("src")]
        if bad:
            problems.append(("alt", f"{len(bad)} of {len(images)} figures without meaningful alt "
                                    f"text (e.g. alt={bad[0].get('alt', '')!r})"))
    return problems


def check(html_dir: Path, checks: set[str] | None = None) -> list[str]:
    """Every problem as 'check: page: what', in page order."""
    checks = set(CHECKS) if checks is None else checks
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    problems = []
    if "pages" in checks and not (html_dir / "index.html").exists():
        problems.append("pages: (book): no index.html")
    for entry in toc_files(toc):
        for name, problem in check_page(entry, html_dir, checks):
            problems.append(f"{name}: {entry}: {problem}")
    return problems


def parse_only(values: list[str] | None, known: dict) -> set[str]:
    if not values:
        return set(known)
    chosen = {name.strip() for value in values for name in value.split(",") if name.strip()}
    unknown = chosen - set(known)
    if unknown:
        raise SystemExit(f"unknown check(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(known)}")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--only", action="append", metavar="CHECKS",
                        help=f"comma-separated checks to run (default: all): {', '.join(CHECKS)}")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, what in CHECKS.items():
            print(f"{name:11} {what}")
        return 0
    checks = parse_only(args.only, CHECKS)
    problems = check(args.html, checks)
    for problem in problems:
        print(f"book check: {problem}", file=sys.stderr)
    pages = len(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    failed = Counter(check for check, _ in {tuple(p.split(": ", 2)[:2]) for p in problems})
    ordered = [name for name in CHECKS if name in checks]
    summary = ", ".join(f"{name} {'FAILED on ' + str(failed[name]) + ' page(s)' if failed[name] else 'ok'}"
                        for name in ordered)
    print(f"book check ({pages} pages): {summary}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
