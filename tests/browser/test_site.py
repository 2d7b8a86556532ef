"""The built book in a real browser: headless Chromium opens every page over a loopback server.

Each page must have its title, every image must decode (natural width > 0), MathJax must have
typeset every display equation without a TeX error, no code cell may be wider than the text column
at 1280 px, the console must stay free of errors, and no request may leave the site (it renders offline).
Run after ``make book`` (``make test`` does both); skipped when the site or Chromium is missing.
The front page and a notebook page are also saved as 1280×800 screenshots in build/book/.
"""
import json
import os
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from chromium import Chromium, find_chromium
from helpers import book

SITE = book.OUT_DIR / "html"
PAGES = [p.relative_to(SITE).as_posix() for p in book.site_pages(SITE)] if SITE.is_dir() else []
CONTENT_PAGES = [p for p in PAGES if p != "index.html"]
SCREENSHOTS = {"book/index.html": "front.png", "notebooks/02_2d_shapes.html": "notebook_02.png"}
SUMMARY = book.OUT_DIR / "browser-check.json"

# Everything the assertions need, gathered once the images are decoded and MathJax is done.
PAGE_REPORT = """(async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const displays = [...document.querySelectorAll("div.math")];
  const h1 = document.querySelector("article h1, main h1, h1");
  return {
    title: document.title,
    heading: h1 ? h1.textContent.replace(/[#¶]/g, "").trim() : "",
    images: images.map(img => [img.getAttribute("src"), img.naturalWidth]),
    displays: displays.length,
    untypeset: displays.filter(d => !d.querySelector('mjx-container[display="true"]'))
                      .map(d => d.textContent.trim().slice(0, 80)),
    tex_errors: [...document.querySelectorAll("mjx-merror")].map(e => e.textContent.slice(0, 80)),
    code_blocks: document.querySelectorAll("div.cell_input pre").length,
    folded: document.querySelectorAll(".tag_hide-input").length,
    folded_closed: document.querySelectorAll(".tag_hide-input > details:not([open]) div.cell_input pre").length,
    folded_visible: [...document.querySelectorAll(".tag_hide-input div.cell_input pre")].filter(p => p.checkVisibility()).length,
    wide_code: [...document.querySelectorAll("div.cell_input pre")]
                 .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 60)),
  };
})()"""

pytestmark = pytest.mark.skipif(not PAGES and not os.environ.get("CI"),
                                reason=f"no built book in {SITE}: run `make book` first")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url():
    """The site served on 127.0.0.1 at a free port for the duration of the module."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("chromium is not installed (apt-get install chromium)")
    with Chromium(binary) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def summary():
    """Counts over all pages, written to build/book/browser-check.json at the end."""
    counts = {"pages": 0, "images": 0, "display_equations": 0}
    yield counts
    SUMMARY.write_text(json.dumps(counts, indent=1) + "\n")


@pytest.mark.parametrize("page", CONTENT_PAGES)
def test_page(browser, site_url, summary, page):
    browser.open(site_url + page)
    report = browser.evaluate(PAGE_REPORT)
    assert report["heading"], f"{page} has no <h1>"
    assert report["title"].startswith(report["heading"]), \
        f"{page}: title {report['title']!r} does not start with its heading {report['heading']!r}"
    broken = [src for src, width in report["images"] if width == 0]
    assert not broken, f"{page}: {len(broken)} image(s) did not decode: {broken}"
    assert not report["untypeset"], f"{page}: display maths not typeset by MathJax: {report['untypeset']}"
    assert not report["tex_errors"], f"{page}: MathJax TeX errors: {report['tex_errors']}"
    assert not report["wide_code"], f"{page}: code wider than the text column at 1280 px: {report['wide_code']}"
    if page.startswith("notebooks/"):   # the measuring apparatus is folded: present, its code hidden until opened
        assert report["folded"] >= 3 and report["folded_closed"] == report["folded"], \
            f"{page}: {report['folded']} folded cells, {report['folded_closed']} of them closed"
        assert report["folded_visible"] == 0, f"{page}: {report['folded_visible']} folded code blocks are visible"
    assert not browser.errors(), f"{page}: console errors: {browser.errors()}"
    offsite = [url for url in browser.requests() if not url.startswith((site_url, "data:", "blob:"))]
    assert not offsite, f"{page}: requests beyond the site (it must work offline): {offsite}"
    if page in SCREENSHOTS:
        shot = browser.screenshot(book.OUT_DIR / "screenshots" / SCREENSHOTS[page])
        assert Image.open(shot).size == (1280, 800)
    summary["pages"] += 1
    summary["images"] += len(report["images"])
    summary["display_equations"] += report["displays"]
    summary["code_blocks"] = summary.get("code_blocks", 0) + report["code_blocks"]


def test_root_leads_to_front_page(browser, site_url):
    browser.open(site_url)
    for _ in range(50):
        try:
            if browser.evaluate("location.pathname") == "/" + book.HOME:
                return
        except RuntimeError:       # the page is being replaced while we ask
            pass
        time.sleep(0.1)
    pytest.fail(f"{site_url} did not forward to {book.HOME}")


def test_notebooks_and_front_page_are_in_the_site():
    expected = {"book/index.html", "book/glossary.html", "book/references.html", "book/solutions.html", "book/report.html",
                "book/instructors.html",
                *(f"notebooks/{nb.stem}.html" for nb in (book.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    assert expected <= set(PAGES), f"missing pages: {sorted(expected - set(PAGES))}"
