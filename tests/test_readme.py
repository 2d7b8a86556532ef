"""The README's result tables are generated from figures/data and must agree with it."""
import numpy as np
import pytest

from helpers import readme, runtime


def test_readme_agrees_with_the_stored_results():
    text = readme.README.read_text()
    assert "<!-- table:" in text
    assert readme.render(text) == text, "README.md disagrees with figures/data: run `make readme`"


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
