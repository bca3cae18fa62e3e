"""Open the built book in headless Chromium (Debian's ``chromium``) and check that every page
renders, its images load and nothing errors in the console; saves screenshots.

    python tools/browser_check.py [--html _build/html] [--screenshots _build/screenshots]

Needs ``apt-get install chromium``. Each page is loaded twice: ``--dump-dom`` shows what
rendered, ``--screenshot`` saves a picture; console errors come from Chromium's log
(``--enable-logging=stderr``), and every ``<img>`` of the page must exist in the build.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import ROOT, toc_files  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,1600", "--enable-logging=stderr",
         "--log-level=0"]
# Chromium logs every console message as
#   [..:INFO:CONSOLE:12] "Uncaught ReferenceError: x is not defined", source: URL (12)
# errors are the messages that report an exception or a failed load.
CONSOLE_MESSAGE = re.compile(r'CONSOLE[:(]\d+\)?\] "(.*?)", source: (\S*)')
ERROR_WORDS = ("Uncaught", "Error", "Failed to load")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found: apt-get install chromium")


def check_page(browser: str, url: str, screenshot: Path) -> list[str]:
    problems = []
    with tempfile.TemporaryDirectory() as profile:
        flags = FLAGS + [f"--user-data-dir={profile}"]
        dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
        shot = subprocess.run([browser, *flags, "--virtual-time-budget=5000",
                               f"--screenshot={screenshot}", url],
                              capture_output=True, text=True, timeout=120)
    for message, source in CONSOLE_MESSAGE.findall(dom.stderr + shot.stderr):
        if any(word in message for word in ERROR_WORDS):
            problems.append(f"console: {message} ({source})")
    if "<article" not in dom.stdout and 'role="main"' not in dom.stdout:
        problems.append("no main content rendered")
    if not screenshot.exists() or screenshot.stat().st_size < 10_000:
        problems.append("no screenshot")
    return list(dict.fromkeys(problems))  # each message once, in order


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    args = parser.parse_args(argv)
    browser = chromium()
    args.screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    failures = 0
    try:
        for entry in toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())):
            page = f"{base}/{entry}.html"
            # images: every <img> on the built page must be served
            html = (args.html / f"{entry}.html").read_text()
            problems = []
            for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
                if src.startswith(("http", "data:")):
                    continue
                target = (args.html / entry).parent / src
                if not target.resolve().exists():
                    problems.append(f"image not served: {src}")
            problems += check_page(browser, page, args.screenshots / (entry.replace("/", "_") + ".png"))
            status = "ok" if not problems else "; ".join(problems)
            print(f"{entry}: {status}")
            failures += bool(problems)
    finally:
        server.shutdown()
    print(f"screenshots in {args.screenshots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
