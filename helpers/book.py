"""Build the book (``make book``): the stored notebooks and book/*.md as a static site, then check it.

``python -m helpers.book`` runs Sphinx (configuration in ``book/conf.py``) with warnings as
errors into ``build/book/html``, then checks every internal link of the result. The notebooks are
rendered from their stored outputs and never executed. Nothing is fetched at build or view time:
MathJax is copied from an installed package (django-static-mathjax, MathJax 3.2 as plain files).
"""
import argparse
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .runtime import ROOT

BOOK_DIR = ROOT / "book"
OUT_DIR = ROOT / "build" / "book"
MATHJAX_PATH = "mathjax/tex-chtml.js"     # relative to _static, as Sphinx's mathjax_path wants it
HOME = "book/index.html"                  # the front page, where the site's root index.html leads


def mathjax_source() -> Path:
    """The MathJax 3 browser build (``es5/``) shipped by the django-static-mathjax package."""
    import mathjax
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"no tex-chtml.js in {source}; reinstall django-static-mathjax")
    return source


def copy_mathjax(app, exception):
    """Sphinx ``build-finished`` hook: MathJax into ``_static/mathjax``, and the site's root page."""
    if exception is None and app.builder.format == "html":
        outdir = Path(app.outdir)
        shutil.copytree(mathjax_source(), outdir / "_static" / "mathjax", dirs_exist_ok=True)
        write_root_page(outdir)


def write_root_page(outdir: Path):
    """``index.html`` at the site's root that forwards to the front page (Sphinx writes it to book/)."""
    (outdir / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={HOME}">'
        f'<title>Diffusion models · a notebook series</title></head>\n'
        f'<body><p>The book starts at <a href="{HOME}">{HOME}</a>.</p></body></html>\n', encoding="utf-8")


# --- link check ----------------------------------------------------------------------------


class PageLinks(HTMLParser):
    """The ids a page defines and the links (href, src) it makes."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append(attrs[key])


def parse_page(path: Path) -> PageLinks:
    page = PageLinks()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def site_pages(site: Path) -> list[Path]:
    """Every HTML page of the built site, except the copied assets under ``_static``."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def broken_links(site: Path) -> list[str]:
    """Internal links of the site that lead nowhere: a missing file, or a #fragment that the
    target page does not define. External links (http, mailto, …) are not followed."""
    site, parsed, problems = Path(site), {}, []
    pages = site_pages(site)
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {site}; build the book first (make book)")

    def ids_of(page: Path):
        if page not in parsed:
            parsed[page] = parse_page(page)
        return parsed[page].ids

    for page in pages:
        for link in parse_page(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: {link}"
            if not target.is_file():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
                problems.append(f"{where} (no id {parts.fragment!r} in {target.relative_to(site)})")
    return problems


# --- build ---------------------------------------------------------------------------------


def build(out: Path = OUT_DIR, fresh: bool = False) -> Path:
    """Sphinx with warnings as errors: ``out/html`` (the site) and ``out/doctrees`` (its cache)."""
    from sphinx.cmd.build import build_main
    shutil.rmtree(out / "html", ignore_errors=True)     # no stale pages; the doctree cache stays
    args = ["-W", "--keep-going", "-q", "-b", "html", "-c", str(BOOK_DIR), "-d", str(out / "doctrees"),
            str(ROOT), str(out / "html")]
    if build_main(["-E", *args] if fresh else args) != 0:
        raise RuntimeError("Sphinx reported errors or warnings (above); the book was not built cleanly")
    return out / "html"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="build folder (default build/book)")
    ap.add_argument("--fresh", action="store_true", help="ignore Sphinx's cache and read every page again")
    args = ap.parse_args(argv)
    site = build(args.out.resolve(), args.fresh)
    problems = broken_links(site)
    for problem in problems:
        print(f"broken link: {problem}", file=sys.stderr)
    if problems:
        sys.exit(f"error: {len(problems)} broken internal link(s) in {site}")
    print(f"book: {len(site_pages(site))} pages, internal links checked: {site / HOME}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
