"""The README's result tables are generated from figures/data and must agree with it."""
import numpy as np
import pytest

from helpers import readme, runtime


@pytest.mark.parametrize("page", readme.PAGES, ids=lambda p: p.name)
def test_readme_agrees_with_the_stored_results(page):
    text = page.read_text()
    assert "<!-- table:" in text
    assert readme.render(text) == text, f"{page.name} disagrees with figures/data: run `make readme`"


def test_timings_are_recorded_and_tabled(tmp_path, monkeypatch):
    """The last cold and the last warm run of each notebook and profile are merged into timings.json; the table
    gives both, with how each started and its peak memory."""
    import json
    monkeypatch.setenv("DDPM_FIGURES_DIR", str(tmp_path))
    runs = tmp_path / "timings"
    runs.mkdir()
    common = dict(date="2026-12-02", cores=2, peak_memory_mb=1536, cells=[[0, 1.0]])
    for name, profile, total, start in (("01_a.ipynb", "report", 90.0, dict(trained=0, reused=0, start="trains nothing")),
                                        ("02_b.ipynb", "lab", 240.0, dict(trained=3, reused=0, start="cold")),
                                        ("02_b.ipynb", "lab", 120.0, dict(trained=0, reused=3, start="warm"))):
        (runs / f"{name[:-6]}-{profile}-{start['start']}.json").write_text(
            json.dumps(dict(notebook=name, profile=profile, total_s=total, **start, **common)))
    (runs / "nb-default-unknown.json").write_text(json.dumps(dict(notebook="nb.ipynb", profile="default", total_s=1.0, cells=[])))
    merged = readme.record_timings(runs)
    assert set(merged) == {"01_a.ipynb", "02_b.ipynb"} and set(merged["02_b.ipynb"]["lab"]) == {"cold", "warm"}
    table = readme.table_timings()
    assert "| notebook | lab | report |" in table
    assert "| 01_a.ipynb | not measured | trains nothing: 1.5 min, 1.5 GB |" in table
    assert "| 02_b.ipynb | cold (3 models trained): 4.0 min, 1.5 GB; warm: 2.0 min, 1.5 GB | not measured |" in table
    assert "measured on 2 cores (2026-12-02)" in table


def test_a_changed_result_changes_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_FIGURES_DIR", str(tmp_path))
    runtime.save_arrays(tmp_path / "data" / "01_x0_table.npz", process=np.array(["exact reverse"]), mean=np.array([3.0]),
                        std=np.array([0.5]), ks=np.array([0.002]), ks_floor=np.array([0.001]))
    block = "<!-- table:01_x0 -->\nstale\n<!-- /table -->"
    assert readme.render(block) == ("<!-- table:01_x0 -->\n| reverse process | mean of x₀ | std of x₀ | KS distance / its floor |\n"
                                    "| --- | --- | --- | --- |\n| exact reverse | 3.000 | 0.500 | 2.0 |\n<!-- /table -->")


def test_an_unknown_table_is_named():
    with pytest.raises(ValueError, match="nonexistent"):
        readme.render("<!-- table:nonexistent -->\n<!-- /table -->")
