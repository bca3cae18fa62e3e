"""Open the built book in headless Chromium (Debian's ``chromium``) and check every page as a
reader sees it; saves screenshots.

    python tools/browser_check.py [--html _build/html] [--screenshots _build/screenshots]
                                  [--only render,search-visible,tables,...] [--list]

Needs ``apt-get install chromium``. Each page is loaded twice: ``--dump-dom`` shows what
rendered, ``--screenshot`` saves a picture; console errors come from Chromium's log
(``--enable-logging=stderr``). For the DOM load the local server adds a small script to the page
that measures, once the page has loaded, what only a browser knows (which search boxes are
visible, how wide each table is) and writes it into the DOM that ``--dump-dom`` prints.

Browser checks:

  render          the page renders its content, every image loads, no console errors
  search-visible  exactly one search box is visible (at the window width, 1280 px)
  tables          no table is wider than the content column

and every static check of ``tools/check_book.py`` (pages, search, paths, nbval, parameters,
captions, alt), so one run asserts all of them for every page. ``--only`` picks checks
(comma-separated or repeated); exit 1 when any fails.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import CHECKS as STATIC_CHECKS  # noqa: E402
from check_book import ROOT, check_page as static_check_page, parse_only, toc_files  # noqa: E402

BROWSER_CHECKS = {
    "render": "content renders, images load, no console errors",
    "search-visible": "exactly one visible search box",
    "tables": "no table wider than the content column",
}
ALL_CHECKS = {**BROWSER_CHECKS, **STATIC_CHECKS}

WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WIDTH},1600", "--enable-logging=stderr",
         "--log-level=0"]
# Chromium logs every console message as
#   [..:INFO:CONSOLE:12] "Uncaught ReferenceError: x is not defined", source: URL (12)
# errors are the messages that report an exception or a failed load.
CONSOLE_MESSAGE = re.compile(r'CONSOLE[:(]\d+\)?\] "(.*?)", source: (\S*)')
ERROR_WORDS = ("Uncaught", "Error", "Failed to load")

MEASURE_QUERY = "dcai-measure"
# Runs in the page once its DOM and styles are there, and again after the load event (the last
# measurement wins; a page whose load event waits on an unreachable resource still reports);
# the result lands in <div id="dcai-measure"> for --dump-dom to print.
MEASURE_SCRIPT = """
<script>
const dcaiMeasure = () => {
  const visible = (el) => {
    if (el.closest("dialog:not([open])")) return false;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = el.getBoundingClientRect();
    return el.getClientRects().length > 0 && box.width > 0 && box.height > 0;
  };
  const selector = ".search-button-field, .search-button, form.bd-search, input[type=search]";
  const boxes = [...document.querySelectorAll(selector)]
    .filter((el) => !el.parentElement || !el.parentElement.closest(selector))
    .filter(visible)
    .map((el) => (el.parentElement && el.parentElement.className) || el.className);
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const column = article ? article.getBoundingClientRect() : null;
  const tables = [...(article ? article.querySelectorAll("table") : [])].map((table, i) => {
    const box = table.getBoundingClientRect();
    const head = table.querySelector("th, td");
    return {index: i + 1, width: Math.round(box.width), right: Math.round(box.right),
            head: head ? head.textContent.trim().slice(0, 40) : ""};
  });
  const out = document.getElementById("dcai-measure") || document.createElement("div");
  out.id = "dcai-measure";
  out.textContent = JSON.stringify({
    boxes, tables,
    column: column ? {width: Math.round(column.width), right: Math.round(column.right)} : null,
  });
  document.body.appendChild(out);
};
document.addEventListener("DOMContentLoaded", () => setTimeout(dcaiMeasure, 100));
window.addEventListener("load", () => setTimeout(dcaiMeasure, 200));
</script>
"""
MEASURED = re.compile(r'<div id="dcai-measure"[^>]*>(.*?)</div>', re.S)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the build; a page asked for with ?dcai-measure gets the measuring script."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if MEASURE_QUERY not in query or not path.endswith(".html"):
            return super().do_GET()
        file = Path(self.translate_path(path))
        if not file.is_file():
            return super().do_GET()
        html = file.read_text(encoding="utf-8")
        html = html.replace("</body>", MEASURE_SCRIPT + "</body>", 1)
        body = html.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Handler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found: apt-get install chromium")


def unescape(text: str) -> str:
    return text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def check_page(browser: str, url: str, screenshot: Path, checks: set[str]) -> list[tuple[str, str]]:
    problems = []
    with tempfile.TemporaryDirectory() as profile:
        flags = FLAGS + [f"--user-data-dir={profile}"]
        dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom",
                              f"{url}?{MEASURE_QUERY}"],
                             capture_output=True, text=True, timeout=120)
        shot = subprocess.run([browser, *flags, "--virtual-time-budget=5000",
                               f"--screenshot={screenshot}", url],
                              capture_output=True, text=True, timeout=120)
    if "render" in checks:
        for message, source in CONSOLE_MESSAGE.findall(dom.stderr + shot.stderr):
            if any(word in message for word in ERROR_WORDS):
                problems.append(("render", f"console: {message} ({source})"))
        if "<article" not in dom.stdout and 'role="main"' not in dom.stdout:
            problems.append(("render", "no main content rendered"))
        if not screenshot.exists() or screenshot.stat().st_size < 10_000:
            problems.append(("render", "no screenshot"))
    if checks & {"search-visible", "tables"}:
        found = MEASURED.search(dom.stdout)
        if not found:
            problems.append((sorted(checks & {"search-visible", "tables"})[0],
                             "the page's measurements did not come back"))
        else:
            measured = json.loads(unescape(found.group(1)))
            boxes = measured["boxes"]
            if "search-visible" in checks and len(boxes) != 1:
                problems.append(("search-visible", f"{len(boxes)} visible search boxes "
                                                   f"({', '.join(boxes) or 'none'}), want 1"))
            column = measured["column"]
            if "tables" in checks and column:
                for table in measured["tables"]:
                    if table["width"] > column["width"] + 1 or table["right"] > column["right"] + 1:
                        problems.append(("tables", f"table {table['index']} ({table['head']!r}...) "
                                                   f"is {table['width']} px wide, the column "
                                                   f"{column['width']} px"))
    return list(dict.fromkeys(problems))  # each message once, in order


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    parser.add_argument("--only", action="append", metavar="CHECKS",
                        help=f"comma-separated checks (default: all): {', '.join(ALL_CHECKS)}")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, what in ALL_CHECKS.items():
            print(f"{name:15} {what}")
        return 0
    checks = parse_only(args.only, ALL_CHECKS)
    browser = chromium()
    args.screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    failed: dict[str, set[str]] = {}
    entries = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    try:
        for entry in entries:
            problems = static_check_page(entry, args.html, checks & set(STATIC_CHECKS))
            if "render" in checks:
                # images: every <img> on the built page must be served
                html = (args.html / f"{entry}.html")
                for src in re.findall(r'<img[^>]+src="([^"]+)"', html.read_text() if html.exists() else ""):
                    if src.startswith(("http", "data:")):
                        continue
                    if not ((args.html / entry).parent / src).resolve().exists():
                        problems.append(("render", f"image not served: {src}"))
            if checks & set(BROWSER_CHECKS):
                problems += check_page(browser, f"{base}/{entry}.html",
                                       args.screenshots / (entry.replace("/", "_") + ".png"),
                                       checks)
            for name, problem in problems:
                failed.setdefault(name, set()).add(entry)
            status = "ok" if not problems else "; ".join(f"[{n}] {p}" for n, p in problems)
            print(f"{entry}: {status}")
    finally:
        server.shutdown()
    print(f"screenshots in {args.screenshots}")
    summary = ", ".join(f"{name} FAILED on {len(failed[name])} page(s)" if name in failed
                        else f"{name} ok" for name in ALL_CHECKS if name in checks)
    print(f"browser check ({len(entries)} pages): {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
