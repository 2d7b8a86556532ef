"""Sphinx configuration of the book: the stored notebooks (never re-executed) and the pages in book/.

`make book` runs ``python -m helpers.book``, which calls Sphinx with the repository root as the
source directory and this folder as the configuration directory, so that the notebooks' relative
links (``../figures/…``, ``../book/glossary.md``) resolve in the book exactly as on GitHub.
"""
from helpers import book

project = "Diffusion models, from a 1D Gaussian to 2D shapes and new stars"
root_doc = "book/index"
include_patterns = ["book/*.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = ["build", ".venv", ".git", "data", "figures", "helpers", "tests", "solutions", "README.md"]

extensions = ["myst_nb", "sphinx_book_theme", "sphinxcontrib.bibtex", "sphinx_togglebutton"]

# Notebooks: rendered from their stored outputs, never executed.
nb_execution_mode = "off"
nb_ipywidgets_js = {}                 # no widget manager (it would come from a CDN): progress bars stay hidden
myst_enable_extensions = ["dollarmath", "colon_fence"]
nb_render_markdown_format = "myst"      # a cell's Markdown output is read like a markdown cell: its $…$ maths renders
myst_heading_anchors = 3              # GitHub-style heading slugs, so `glossary.md#ema` works in both places

# Maths: MathJax 3 from an installed package, copied into _static/mathjax by helpers.book.
mathjax_path = book.MATHJAX_PATH

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"

html_theme = "sphinx_book_theme"
html_title = "Diffusion models · a notebook series"
html_favicon = "_static/favicon.svg"   # points falling onto a ring
html_static_path = ["_static"]
html_css_files = ["code.css"]           # code cells wrap at the text column
html_use_index = False                # no index entries: no empty genindex page
html_last_updated_fmt = None
html_context = {"default_mode": "light"}   # the figures have white backgrounds
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,
    "navbar_persistent": [],          # search lives in the sidebar; no second copy in a header bar
    "footer_content_items": [],       # no author or copyright line to invent
}


def setup(app):
    app.connect("build-finished", book.copy_mathjax)
