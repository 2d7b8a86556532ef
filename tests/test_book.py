"""The book's pieces without building it: the link checker, MathJax from its package, the root page,
the bibliography, the glossary and the table of contents. (The built site is tested in a browser by
tests/browser/test_site.py, after `make book`.)"""
import json
import re

import pytest
from pybtex.database import parse_file

from helpers import book

NOTEBOOKS = sorted((book.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def write_site(root, pages: dict):
    for name, html in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)
    return root


def test_broken_links_finds_missing_files_and_fragments(tmp_path):
    site = write_site(tmp_path, {
        "index.html": '<a href="book/a.html#there">ok</a> <a href="https://example.org/x">external</a>'
                      '<img src="_images/missing.png"> <a href="#top">self</a> <a id="top"></a>',
        "book/a.html": '<h1 id="there">A</h1><a href="../index.html#nowhere">bad fragment</a>'
                       '<a href="b.html">missing page</a><a href="../_static/x.js">asset</a>',
        "_static/x.js": "",
    })
    assert sorted(book.broken_links(site)) == [
        "book/a.html: ../index.html#nowhere (no id 'nowhere' in index.html)",
        "book/a.html: b.html (no such file)",
        "index.html: _images/missing.png (no such file)",
    ]


def test_broken_links_needs_a_built_site(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the book first"):
        book.broken_links(tmp_path)


def test_mathjax_comes_from_the_installed_package():
    source = book.mathjax_source()
    assert (source / "tex-chtml.js").is_file()
    assert (source / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert book.MATHJAX_PATH == "mathjax/tex-chtml.js"


def test_root_page_forwards_to_the_front_page(tmp_path):
    book.write_root_page(tmp_path)
    html = (tmp_path / "index.html").read_text()
    assert f'url={book.HOME}"' in html and f'href="{book.HOME}"' in html


def test_bibliography_holds_every_cited_work():
    entries = parse_file(book.BOOK_DIR / "references.bib").entries
    first_author_year = {(e.persons["author"][0].last_names[0], e.fields["year"]) for e in entries.values()}
    assert first_author_year == {
        ("Johansson", "2024"), ("Weng", "2021"), ("Ho", "2020"), ("Nichol", "2021"), ("Song", "2021"),
        ("Salimans", "2022"), ("Lin", "2024"), (r"Kynk{\"a}{\"a}nniemi", "2019"), ("Achlioptas", "2018"),
        ("Yang", "2019"), ("Luo", "2021"), ("Matejka", "2017"), ("Li", "2021"), ("Student", "1908"), ("Welch", "1947"),
        ("Holm", "1979"), ("Naeem", "2020"), ("Vincent", "2011"), ("Song", "2019"), ("Efron", "2011"), ("Ho", "2022"),
        ("Smirnov", "1948"), ("Pearson", "1900"), ("Fisher", "1922"), ("Dinh", "2017"), ("Davison", "1997"), ("Meng", "2022")}
    assert all({"url", "doi"} & set(e.fields) for key, e in entries.items() if key != "johansson2024report")


def test_glossary_defines_every_term_and_keeps_the_chamfer_distances_apart():
    text = (book.BOOK_DIR / "glossary.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == ["SNR and log-SNR", "Prediction target: epsilon, x0 or v", "Variational bound (ELBO)", "Score",
                        "Classifier-free guidance", "Ancestral sampling", "Restart", "DDIM",
                        "Data floor", "Chamfer distance, 2D shapes", "Median nearest-neighbour distance",
                        "Points outside the data's range", "Chamfer distance, stars", "Sliced Wasserstein-1",
                        "Precision and recall", "Coverage", "MMD, COV and 1-NNA", "Paired and Welch t-tests", "Holm's correction",
                        "Two-sample tests of a distribution", "Power and false-positive rate",
                        "EMA", "Radial profile", "Probit coordinates", "Spectral convolution"]
    assert "mean unsquared nearest-neighbour distance" in text and "summed mean squared nearest-neighbour" in text
    # the floor is a reference, not a bound: blurred sets score past it on MMD and recall
    assert "reference, not a bound" in text and "beat it" not in text
    # every statistic the verdicts use is defined, with the functions that compute it
    for name in ("helpers.verdicts.compare", "helpers.verdicts.holm", "helpers.metrics.median_chamfer",
                 "helpers.metrics.outside_range", "helpers.metrics.coverage", "family-wise error rate", "false-positive rate"):
        assert name in text


def test_table_of_contents_lists_every_notebook_and_page():
    index = (book.BOOK_DIR / "index.md").read_text()
    entries = re.findall(r"^\.\./notebooks/(\S+)$|^(report|solutions|glossary|references|instructors)$", index, flags=re.M)
    assert [a or b for a, b in entries] == [nb.stem for nb in NOTEBOOKS] + ["report", "solutions", "glossary", "references",
                                                                           "instructors"]


def test_report_in_brief_gives_every_equation_and_figure_the_notebooks_cite():
    page = (book.BOOK_DIR / "report.md").read_text()
    rows = re.findall(r"^\| (\d+|—) \|", page, flags=re.M)
    assert rows == ["1", "2", "3", "4", "5", "6", "7", "—", "8"]
    for figure in range(1, 10):
        assert f"| Fig. {figure} |" in page
    for name in re.findall(r"`(0\d_\w+\.png)`", page):
        assert (book.BOOK_DIR.parent / "figures" / name).exists(), name
    cited = set()
    for nb in NOTEBOOKS:
        text = nb.read_text()
        cited |= {int(n) for n in re.findall(r"eqs? (\d)\b", text)} | {int(n) for n in re.findall(r"Fig(?:ure)?s?\.? (\d)\b", text)}
        assert "../book/report.md" in "".join(json.loads(text)["cells"][0]["source"]), nb.name
    assert cited <= set(range(1, 10)), cited


def test_no_control_characters_in_the_sources():
    """A non-raw Python string once turned \\b, \\a and \\v of LaTeX into backspace, bell and vertical tab."""
    bad = {chr(c) for c in range(32)} - {"\n", "\t"}
    for path in [*NOTEBOOKS, *book.BOOK_DIR.glob("*.md"), book.ROOT / "README.md"]:
        text = (path.read_text() if path.suffix != ".ipynb" else
                "".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]))
        found = sorted({repr(ch) for ch in bad if ch in text})
        assert not found, f"{path.name} contains control characters {found}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_measuring_apparatus_is_folded_in_the_book(notebook):
    """Cells that only measure or only write out a paragraph carry `hide-input` (folded in the book, open in
    Jupyter), the first cell says so, and nothing a reader edits (parameters, exercises) is folded."""
    cells = json.loads(notebook.read_text())["cells"]
    folded = [c for c in cells if "hide-input" in c["metadata"].get("tags", [])]
    assert len(folded) >= 3, f"{notebook.name}: only {len(folded)} folded cells"
    assert all(c["cell_type"] == "code" for c in folded)
    assert not [c for c in folded if {"parameters", "exercises"} & set(c["metadata"]["tags"])]
    assert "is folded; click to open it. In Jupyter every cell is open." in "".join(cells[0]["source"])
