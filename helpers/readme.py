"""``make readme``: the README's result tables, generated from ``figures/data/*.npz``, never typed.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->`` in README.md (and in the
instructors' page of the book) and is rewritten from the arrays the notebooks saved; the time table
from ``figures/data/timings.json``, which ``make timings`` fills from the last runs. ``python -m helpers.readme --check`` fails if the
README disagrees with the stored results (``tests/test_readme.py`` runs that check).
"""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from .notebook import STARTS
from .runtime import PROFILES, ROOT, atomic_write, figures_dir

README = ROOT / "README.md"
PAGES = (README, ROOT / "book" / "instructors.md")     # every file with generated tables
BLOCK = re.compile(r"(<!-- table:(\w+) -->\n).*?(<!-- /table -->)", re.S)


def load(name: str) -> dict:
    """The arrays of ``<figures dir>/data/<name>.npz``."""
    with np.load(figures_dir() / "data" / f"{name}.npz") as arrays:
        return dict(arrays)


def markdown_table(header, rows) -> str:
    """A Markdown table from a header and rows of already formatted cells."""
    lines = [header, ["---"] * len(header), *rows]
    return "".join("| " + " | ".join(map(str, line)) + " |\n" for line in lines)


def table_01_x0() -> str:
    """Notebook 01: x_0 from each reverse process against the target N(m, p²)."""
    d = load("01_x0_table")
    return markdown_table(["reverse process", "mean of x₀", "std of x₀", "KS distance / its floor"],
                          [[name, f"{mean:.3f}", f"{std:.3f}", f"{ks / floor:.1f}"]
                           for name, mean, std, ks, floor in zip(d["process"], d["mean"], d["std"], d["ks"], d["ks_floor"])])


def table_02_final() -> str:
    """Notebook 02: Chamfer ratio and precision per shape and epoch, EMA and raw weights of one run."""
    d = load("02_final_table")
    value = {(s, int(e), w, m): v for s, e, w, m, v in zip(d["shape"], d["epoch"], d["weights"], d["metric"],
                                                              d["model_mean_sd_floor_mean_sd"])}
    rows = []
    for shape, epoch in dict.fromkeys((s, e) for s, e, _, _ in value):
        cells = [shape, epoch]
        for weights in ("EMA", "raw"):
            chamfer, precision = value[shape, epoch, weights, "chamfer"], value[shape, epoch, weights, "precision"]
            cells += [f"{chamfer[0] / chamfer[2]:.2f}", f"{precision[0]:.3f}"]
        rows.append(cells + [f"{precision[2]:.3f}"])
    return markdown_table(["shape", "epochs", "Chamfer / floor, EMA", "precision, EMA", "Chamfer / floor, raw",
                           "precision, raw", "precision of real data"], rows)


def table_02_verdicts() -> str:
    """Notebook 02: every seed verdict, its paired t-test and whether Holm rejects within its table."""
    d = load("02_verdicts")
    label = {"median_nn": "median NN / floor", "precision": "precision", "coverage": "coverage", "outside": "points outside"}
    return markdown_table(["question", "shape", "comparison (gap = first − second)", "metric", "gap (se)", "p", "verdict"],
                          [[f, s, c, label[m], f"{g:+.3g} ({se:.2g})", f"{p:.2g}",
                            f"significant at {float(d['level']):.0%} (Holm over {n})" if sig else "not significant"]
                           for f, s, c, m, g, se, p, sig, n in zip(d["family"], d["shape"], d["comparison"], d["metric"], d["gap"],
                                                                   d["se"], d["p"], d["significant"], d["family_size"])])


def table_02_memorisation() -> str:
    """Notebook 02: distance to the nearest training point over a fresh draw's, for the memoriser and every trained model."""
    d = load("02_memorisation")
    return markdown_table(["shape", "sampler", "epoch", "runs", "memorisation ratio (mean; range)", "fresh real draws, 90 %"],
                          [[s, k, e, int(n), f"{mean:.2f}" + (f" ({low:.2f}–{high:.2f})" if n > 1 else ""), f"{a:.2f}–{b:.2f}"]
                           for s, k, e, n, low, mean, high, (a, b) in zip(d["shape"], d["sampler"], d["epoch"], d["runs"],
                                                                          d["ratio_min"], d["ratio_mean"], d["ratio_max"], d["interval"])])


def table_02_guidance() -> str:
    """Notebook 02: classifier-free guidance, per shape and scale w: adherence, precision and recall, mean ± sd over the
    conditional models' seeds, and the same scores of fresh real draws."""
    d = load("02_guidance")
    names, scores = [str(n) for n in d["score_names"]], d["scores"]
    rows = []
    for k, shape in enumerate(d["shapes"]):
        for w in sorted(set(d["w"].tolist())):
            pick = (d["shape"] == shape) & (d["w"] == w)
            rows.append([shape, f"{w:g}", int(pick.sum())] + [f"{m:.3f} ± {sd:.3f}" for m, sd in
                                                               zip(scores[pick].mean(0), scores[pick].std(0, ddof=1))])
        real = d["real_scores"][k]
        rows.append([shape, "real data", len(real)] + [f"{m:.3f} ± {sd:.3f}" for m, sd in zip(real.mean(0), real.std(0, ddof=1))])
    return markdown_table(["shape", "w", "runs", *names], rows)


def table_04_quality() -> str:
    """Notebook 04: every schedule (and the cosine fixes) at equal budget, seed 0: the ranking statistic
    (median NN / floor) with the outside count beside it, then the Chamfer ratio that runaways drive."""
    d = load("04_quality")
    return markdown_table(["schedule", "shape", "median NN / floor", "precision", "outside (per set)", "Chamfer / floor",
                           "sliced W1 / floor", "max abs(x)"],
                          [[name, shape, f"{m:.2f}", f"{p:.3f}", f"{o:.1f}", f"{c:.2f}", f"{w:.2f}", f"{x:.3g}"]
                           for name, shape, m, p, o, c, w, x in zip(d["schedule"], d["shape"], d["median_nn_ratio"], d["precision"],
                                                                     d["outside"], d["chamfer_ratio"], d["sliced_w1_ratio"],
                                                                     d["max_abs"])])


def table_04_seeds() -> str:
    """Notebook 04: the ranking statistics over training seeds, mean ± sd, per schedule and shape."""
    d = load("04_seed_spread")
    return markdown_table(["schedule", "shape", "epochs", "seeds", "median NN / floor", "precision", "outside (per set)"],
                          [[name, shape, int(e), int(n), f"{m:.2f} ± {ms:.2f}", f"{p:.3f} ± {ps:.3f}", f"{o:.2f}"]
                           for name, shape, e, n, m, ms, p, ps, o in zip(d["schedule"], d["shape"], d["epochs"], d["seeds"],
                                                                          d["median_nn_mean"], d["median_nn_sd"], d["precision_mean"],
                                                                          d["precision_sd"], d["outside_mean"])])


def table_04_verdicts() -> str:
    """Notebook 04: every ranking verdict, its t-test over the seeds and whether Holm rejects within the family."""
    d = load("04_verdicts")
    label = {"median_nn": "median NN / floor", "precision": "precision"}
    return markdown_table(["arm", "against", "shape", "epochs", "metric", "gap (se)", "p", "verdict"],
                          [[a, b, s, int(e), label[m], f"{g:+.3g} ({se:.2g})", f"{p:.2g}",
                            f"significant at {float(d['level']):.0%} ({t}, Holm over {int(d['family'])})" if sig else "not significant"]
                           for a, b, s, e, m, t, g, se, p, sig in zip(d["arm"], d["reference"], d["shape"], d["epochs"], d["metric"],
                                                                       d["test"], d["gap"], d["se"], d["p"], d["significant"])])


def table_04_prior() -> str:
    """Notebook 04: the ELBO prior term L_T and the marginal KL(q(x_T) ‖ N(0, I)), nats per point."""
    d = load("04_prior_kl")
    return markdown_table(["schedule", "shape", "√ᾱ_T", "ELBO prior term L_T", "marginal KL(q(x_T) ‖ N(0, I))"],
                          [[name, shape, f"{r:.3g}", f"{lt:.4f}", f"{abs(kl) if abs(kl) < 5e-5 else kl:.4f} ± {se:.4f}"]
                           for name, shape, r, lt, kl, se in zip(d["schedule"], d["shape"], d["sqrt_alpha_bar_T"],
                                                                  d["prior_term"], d["marginal"], d["marginal_se"])])


def table_03_stars() -> str:
    """Notebook 03: set metrics (raw and unit-star, mean ± sd over disjoint subsamples of ``group``
    stars) and fits of each set of stars against the held-out test stars; the real-vs-real rows
    are the data's own values at the same group size."""
    d = load("03_metrics")
    pm = lambda key, i, fmt: f"{d[key][i]:{fmt}} ± {d[key + '_sd'][i]:{fmt}}"
    return markdown_table(
        ["stars", "number", "group", "1-NNA-CD, unit stars", "COV-CD, unit stars", "1-NNA-CD, raw", "MMD-CD, raw",
         "fitted by a star", "crispness", "inner ratio in range", "arm mix 5/6/7/8 (%)"],
        [[name, int(d["n"][i]), int(d["group"][i]), pm("unit_nna", i, ".1%"), pm("unit_cov", i, ".2f"),
          pm("raw_nna", i, ".1%"), pm("raw_mmd", i, ".4f"), f"{d['well_fitted'][i]:.1%}", f"{d['crispness'][i]:.2f}",
          f"{d['inner_inside'][i]:.1%}", "/".join(f"{100 * f:.0f}" for f in d["arm_mix"][i])]
         for i, name in enumerate(d["stars"])]
        + [["test stars", "", "", "", "", "", "", "", "", "", "/".join(f"{100 * f:.0f}" for f in d["test_mix"])]])


def p_cell(p: float, rejected: bool) -> str:
    """A p-value as notebook 03's verdict tables print it, starred when Holm rejects its test."""
    return f"{p:.2g}{' *' if rejected else ''}"


def table_03_targets() -> str:
    """Notebook 03: each test's calibrated p-value (* rejected by Holm at 5 % over the nine), the crispness and the
    verdict, for a perfect prior (fresh real stars through the encoder–decoder), each training seed of ours, and the
    decoder's own effect (the same fresh stars against the raw test stars)."""
    d = load("03_targets")
    return markdown_table(
        ["stars", *[str(t) for t in d["tests"]], "crispness", "verdict"],
        [[name, *map(p_cell, d["p"][i], d["rejected"][i]), f"{d['crispness'][i]:.2f}",
          "met" if d["met"][i] else "missed"] for i, name in enumerate(d["stars"])])


def table_03_targets_large() -> str:
    """Notebook 03's large-reference control: each test's p-value against many fresh real stars through the
    encoder–decoder (* rejected by Holm at 5 % over the nine) and the family's verdict."""
    d = load("03_targets_large")
    return markdown_table(["stars", *[str(t) for t in d["tests"]], "family"],
                          [[name, *map(p_cell, p, rejected), "FAIL" if rejected.any() else "pass"]
                           for name, p, rejected in zip(d["stars"], d["p"], d["rejected"])])


def table_03_power() -> str:
    """Notebook 03: the share of independent sets of real and of faulty stars that each test (alone at 5 %) and the
    Holm family reject: the tests' false-positive rate and their power."""
    d = load("03_power")
    return markdown_table(["stars", "sets", *[str(t) for t in d["tests"]]],
                          [[fault, int(sets), *[f"{r:.0%}" for r in rates]]
                           for fault, sets, rates in zip(d["faults"], d["sets"], d["rates"])])


def table_03_power_large() -> str:
    """Notebook 03's large-reference control: the share of independent sets of real and of faulty stars that each test
    (alone at 5 %) and the Holm family reject against the large reference (:func:`table_03_power`'s columns)."""
    d = load("03_targets_large")
    return markdown_table(["stars", "sets", *[str(t) for t in d["rate_columns"]]],
                          [[fault, int(sets), *[f"{r:.0%}" for r in rates]]
                           for fault, sets, rates in zip(d["faults"], d["sets"], d["rates"])])


def table_03_sampler() -> str:
    """Notebook 03's sampler control: for each training seed and sampler (reverse variance β̃_t or β_t), the crispness, the fine structure, the counts outside the generator's ranges and the
    p-values of the residual and centre-outside tests against the test stars and the large reference."""
    d = load("03_sampler")
    return markdown_table(
        ["seed", "sampler", "crispness", "fine structure", "centres outside (sampled / fitted)", "inner ratios outside",
         "p residual, test", "p residual, large", "p centres outside, test", "p centres outside, large"],
        [[int(seed), name, f"{crisp:.3f}", f"{fine:.3f}", f"{out[0]} / {out[1]}", int(out[2]), *[f"{q:.2g}" for q in p]]
         for seed, name, crisp, fine, out, p in zip(d["seeds"], d["samplers"], d["crispness"], d["fine"], d["outside"], d["p"])])


def table_03_centre() -> str:
    """Notebook 03's centre control, one row per training seed: the drawn centres outside the generator's square with
    the centre standardised and in probit coordinates, the paired one-sided p-value (standardised above probit), and the
    full prior's sampled centres outside; last, what a sampler of U(−a, a)² and the encoded training centres put there."""
    d = load("03_centre")
    n = int(d["samples"])
    out = {(int(seed), str(name)): int(k) for seed, name, k in zip(d["seeds"], d["coordinates"], d["outside"])}
    seeds = sorted({seed for seed, _ in out})
    share = lambda k, total: f"{k} of {total} ({k / total:.2%})"
    rows = [[seed, share(out[seed, "standardised"], n), share(out[seed, "probit"], n), f"{p:.2g}",
             share(int(k), int(d["prior_n"]))]
            for seed, p, k in zip(seeds, d["p_paired"], d["prior_outside"])]
    rows.append([f"sampler of U(−a, a)², a = {float(d['box']):.4f}", "", f"{float(d['ideal_share']):.2%}", "", ""])
    rows.append(["training centres (encoded)", "", f"{share(int(d['train_outside']), int(d['train_n']))}; the probit draws "
                 f"pooled against these: two-sided Fisher p = {float(d['p_train']):.2g}", "", ""])
    return markdown_table(["seed", "standardised: outside the square", "probit: outside the square",
                           "p, standardised above probit (paired)", "full prior, as sampled: outside"], rows)


def table_03_restart() -> str:
    """Notebook 03's restart control: for each start (the training latents; restarted from step t0; drawn from noise) and
    training seed, the inner ratios fitted to the profiles below + above the generator's closed range, and the one-sided
    p-value the notebook printed (McNemar for the restarts, Fisher for the draws)."""
    d = load("03_restart")
    cell = lambda below, above, n, p: (f"{below} + {above} of {n} ({(below + above) / n:.1%})"
                                       + ("" if np.isnan(p) else f", p = {p:.2g}"))
    rows = [[str(start), *(cell(int(d["below"][k, i]), int(d["above"][k, i]), int(d["n"][i]), float(d["p"][k, i]))
                           for k in range(len(d["seeds"])))] for i, start in enumerate(d["starts"])]
    return markdown_table(["start", *(f"seed {int(s)}: below + above the range" for s in d["seeds"])], rows)


def timings_path() -> Path:
    """``<figures dir>/data/timings.json``: the measured time of each notebook in each profile."""
    return figures_dir() / "data" / "timings.json"


def load_timings() -> dict:
    """The contents of ``timings.json``; empty before anything was recorded."""
    return json.loads(timings_path().read_text()) if timings_path().exists() else {}


def record_timings(source: Path = ROOT / "build" / "timings", target: Path | None = None) -> dict:
    """Merge the last run of every notebook, profile and start (cold or warm; ``build/timings/NAME-PROFILE-START.json``,
    written by :mod:`helpers.notebook`) into ``figures/data/timings.json``: {notebook: {profile: {start: record}}},
    without the per-cell times; a fresh install's time and size (``build/install.json``) under "install"."""
    target = target or timings_path()
    merged = json.loads(target.read_text()) if target.exists() else {}
    install_file = source.parent / "install.json"
    install = json.loads(install_file.read_text()) if install_file.exists() else {}
    if install.get("fresh"):                                                   # an upgrade of a venv is not an install
        merged["install"] = install
    for path in sorted(source.glob("[0-9][0-9]_*-*.json")):
        record = json.loads(path.read_text())
        if record.get("profile") in PROFILES and record.get("start") in STARTS:
            merged.setdefault(record["notebook"], {}).setdefault(record["profile"], {})[record["start"]] = {
                k: v for k, v in record.items() if k != "cells"}
    atomic_write(target, lambda tmp: open(tmp, "w").write(json.dumps(merged, indent=1, sort_keys=True) + "\n"))
    return merged


def table_timings() -> str:
    """Each notebook's measured time per profile: the last cold run (every model trained in it) and the last warm
    one (every model loaded from the weight cache), with the peak memory of its largest process."""
    record = {k: v for k, v in load_timings().items() if k.endswith(".ipynb")}
    profiles = [p for p in PROFILES if any(p in by_profile for by_profile in record.values())]

    def run(r):
        how = {"cold": f"cold ({r['trained']} models trained)", "warm": "warm",
               "partly cached": f"partly cached ({r['trained']} trained, {r['reused']} loaded)"}.get(r["start"], "trains nothing")
        return f"{how}: {r['total_s'] / 60:.1f} min, {r['peak_memory_mb'] / 1024:.1f} GB"

    def cell(runs):
        return "; ".join(run(runs[s]) for s in STARTS if s in runs) if runs else "not measured"
    machines = sorted({(r["cores"], r["date"]) for runs in record.values() for by_start in runs.values() for r in by_start.values()})
    return (markdown_table(["notebook", *profiles], [[name, *(cell(by_profile.get(p)) for p in profiles)]
                                                     for name, by_profile in sorted(record.items())])
            + "\nWall-clock time of the notebook's cells and the peak memory of its largest process; measured on "
            + ", ".join(f"{cores} cores ({date})" for cores, date in machines) + ".\n")


def table_install() -> str:
    """The measured size of ``.venv`` and the time to create it and install ``requirements.txt`` into it."""
    r = load_timings().get("install")
    row = ([f"{r['megabytes'] / 1024:.1f} GB", f"{r['seconds'] / 60:.1f} min", f"{r['cores']} cores, {r['date']}"] if r
           else ["not measured"] * 3)
    return markdown_table(["`.venv` (fresh)", "size", "time to create and install", "machine"],
                          [["`make venv` (any first `make` target)", *row]])


TABLES = {"timings": table_timings, "install": table_install, "01_x0": table_01_x0, "02_final": table_02_final, "02_verdicts": table_02_verdicts, "02_memorisation": table_02_memorisation, "02_guidance": table_02_guidance, "04_quality": table_04_quality,
          "04_seeds": table_04_seeds, "04_verdicts": table_04_verdicts, "04_prior": table_04_prior, "03_stars": table_03_stars,
          "03_targets": table_03_targets, "03_targets_large": table_03_targets_large,
          "03_power": table_03_power, "03_power_large": table_03_power_large, "03_sampler": table_03_sampler,
          "03_centre": table_03_centre, "03_restart": table_03_restart}


def render(text: str) -> str:
    """``text`` with every generated table block rewritten from the stored results."""
    def fill(match):
        if match[2] not in TABLES:
            raise ValueError(f"unknown README table {match[2]!r}; known: {sorted(TABLES)}")
        return match[1] + TABLES[match[2]]() + match[3]
    return BLOCK.sub(fill, text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if a page differs from the stored results")
    ap.add_argument("--record-timings", action="store_true", help="first merge build/timings into figures/data/timings.json")
    args = ap.parse_args(argv)
    if args.record_timings:
        record_timings()
    for page in PAGES:
        old = page.read_text()
        new = render(old)
        if args.check and new != old:
            sys.exit(f"{page.relative_to(ROOT)} disagrees with figures/data: run `make readme`")
        if not args.check:
            atomic_write(page, lambda tmp: open(tmp, "w").write(new))


if __name__ == "__main__":
    main()
