"""Every number docs/tsfa.md quotes, recomputed, and the doc's blocks rewritten from them.

    python scripts/tsfa_claims.py [--groups soft,quadrature,lyapunov,regret,study]
                                  [--write-docs] [--from-results] [--out results/claims]

Each group recomputes one set of figures and renders the markdown blocks that quote
them; docs/tsfa.md holds those blocks between ``<!-- claims:NAME -->`` and
``<!-- /claims:NAME -->``. The values go to ``--out/<group>.json`` and the blocks to
``--out/<group>.md``; ``--write-docs`` also replaces the blocks in the doc, and
``--from-results`` renders from the values a previous call saved in ``--out``
instead of recomputing them.
``tests/test_claims.py`` renders the groups and fails when a quoted number differs
from its source beyond one unit of its last printed digit (plus a relative 1e-3
for numbers of training runs, whose floats may differ between machines).

Groups and what they cost on two cores:

* ``soft`` (seconds): SOFT's rebuild error against the best subset of ranks and the
  SVD, 2,000 Gaussian draws per kept-rank count;
* ``quadrature`` (instant): the 16-node Rayleigh law's ergodic capacity against the
  closed form;
* ``lyapunov`` (minutes): TSFA over 2,000 synthetic block-fading rounds at five
  budgets;
* ``regret`` (minutes): ``scripts/regret.py --rounds 200``;
* ``study`` (about ten minutes): ``scripts/tsfa_study.py`` (smoke runs of TSFA
  and the baselines; its finished runs are reused).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "tsfa.md"
BLOCK = re.compile(r"<!-- claims:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /claims:(?P=name) -->",
                   re.S)


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:+.{digits}f} %"


# ---------------------------------------------------------------------- soft

def soft(draws: int = 2000, ms: tuple[int, ...] = (1, 2, 4)) -> dict:
    """SOFT's rebuild error (Frobenius, relative) on i.i.d. Gaussian factors (r = 6,
    A 6 x 20, B 16 x 6, zero global adapter, no penalty) against the exhaustive best
    subset of m ranks and against the best rank-m approximation (SVD)."""
    import torch

    from wirelessfl.compression.soft import SOFT, SoftParams
    from wirelessfl.learning.client import ClientUpdate

    a_n, b_n = "m.lora_A.default.weight", "m.lora_B.default.weight"
    comp = SOFT(SoftParams(lambda_orth=0.0))
    out = {}
    for m in ms:
        best, svd = [], []
        for seed in range(draws):
            g = torch.Generator().manual_seed(seed)
            a = torch.randn(6, 20, generator=g, dtype=torch.float64)
            b = torch.randn(16, 6, generator=g, dtype=torch.float64)
            upd = ClientUpdate(0, 10, {a_n: a, b_n: b, "head.weight": torch.ones(2, 3)}, 0.0, 6)
            glob = {a_n: torch.zeros_like(a), b_n: torch.zeros_like(b),
                    "head.weight": torch.zeros(2, 3)}
            met = comp.compress(upd, glob, 32, m, None).metrics
            best.append(met["trunc_err"] / met["subset_oracle_err"])
            svd.append(met["trunc_err"] / met["svd_trunc_err"])
        best, svd = np.array(best), np.array(svd)
        out[str(m)] = {
            "equal_best": float(np.mean(best <= 1 + 1e-9)),
            "best": [float(np.median(best)), float(np.quantile(best, 0.95)), float(best.max())],
            "svd": [float(np.median(svd)), float(np.quantile(svd, 0.95)), float(svd.max())],
            "svd_above_1_5": float(np.mean(svd > 1.5)),
        }
    out["draws"] = draws
    return out


def render_soft(v: dict) -> dict[str, str]:
    rows = ["| m | = best subset | vs best subset: median / p95 / max | vs SVD: median / p95 / "
            "max | vs SVD: share above 1.5x |", "|---|---|---|---|---|"]
    ms = [k for k in v if k != "draws"]
    for m in ms:
        r = v[m]
        rows.append(f"| {m} | {100 * r['equal_best']:.1f} % | "
                    + " / ".join(f"{x:.3f}" for x in r["best"]) + " | "
                    + " / ".join(f"{x:.3f}" for x in r["svd"]) + f" | "
                    f"{100 * r['svd_above_1_5']:.1f} % |")
    worst = max(v[m]["best"][2] for m in ms)
    top = ms[-1]
    text = "\n".join(rows) + f"""

So on generic factors SOFT is within {worst:.2f}x of the best choice of ranks in
every one of the {v['draws']:,} draws of each row. It is *not* within 1.5x of the SVD: at
m = {top} of 6 it is above 1.5x in {100 * v[top]['svd_above_1_5']:.1f} % of the draws.
"""
    return {"soft": text}


# ---------------------------------------------------------------------- quadrature

def quadrature(lo_db: float = -20.0, hi_db: float = 30.0, points: int = 501) -> dict:
    """The 16-node Rayleigh law's ergodic capacity against ``e^{1/snr} E1(1/snr) / ln 2``."""
    from scipy.special import exp1

    from channels.law import exponential_nodes

    g, p = exponential_nodes()
    snr = 10 ** (np.linspace(lo_db, hi_db, points) / 10)
    quad = (p[None, :] * np.log2(1 + snr[:, None] * g[None, :])).sum(axis=1)
    exact = np.exp(1 / snr) * exp1(1 / snr) / math.log(2)
    err = np.abs(quad / exact - 1)
    return {"max_rel_err": float(err.max()), "lo_db": lo_db, "hi_db": hi_db,
            "nodes": int(len(g))}


def render_quadrature(v: dict) -> dict[str, str]:
    return {"quadrature": f"""For Rayleigh the {v['nodes']} nodes are exact closed forms, and the
ergodic capacity they give is within {100 * v['max_rel_err']:.2f} % of
`e^{{1/snr}} E1(1/snr) / ln 2` from {v['lo_db']:.0f} to {v['hi_db']:.0f} dB.
"""}


# ---------------------------------------------------------------------- lyapunov

SHARES_2000 = (0.5, 0.7, 0.9, 1.0, 1.2)


def lyapunov(rounds: int = 2000) -> dict:
    """TSFA (v = 4) over ``rounds`` synthetic rounds of block Rayleigh fading at
    budgets that are shares of equal bandwidth's mean latency."""
    from wirelessfl.control import CONTROLLERS
    from wirelessfl.control.synthetic import SyntheticCell, run_rounds
    from wirelessfl.control.tsfa import TSFA, TSFAParams

    def cell() -> SyntheticCell:
        return SyntheticCell(n=4, rank=4, bandwidth_hz=2e6, seed=3, coherence_time_s=0.01,
                             per_rank_bits=2e5, compute_range_s=(0.01, 0.03))

    eq = float(run_rounds(CONTROLLERS.get("equal")(), cell(), rounds, None)["latency_s"].mean())
    full = float(run_rounds(CONTROLLERS.get("minmax")(), cell(), rounds, None)["latency_s"]
                 .mean())
    rows = []
    for share in SHARES_2000:
        budget = share * eq
        out = run_rounds(TSFA(TSFAParams()), cell(), rounds, budget)
        q = out["queue_s"]
        rows.append({"share": share, "over": float(out["latency_s"].mean() / budget - 1),
                     "q_end": float(q[-1] / rounds),
                     "q_quarter": float(q[rounds // 4] / (rounds // 4)),
                     "kept": float(out["keep_ratio"].mean()),
                     "real_over_plan": float(np.mean(out["latency_s"] / out["planned_s"]))})
    return {"rounds": rounds, "equal_s": eq, "minmax_s": full, "rows": rows}


def render_lyapunov(v: dict) -> dict[str, str]:
    lines = [f"Over {v['rounds']:,} rounds (4 clients, rank 4, 2 MHz, 10 ms Rayleigh blocks, "
             "uploads of 10–50 blocks; `v = 4`) equal shares average "
             f"{v['equal_s']:.3f} s and full-rank min-max {v['minmax_s']:.3f} s = "
             f"{v['minmax_s'] / v['equal_s']:.3f}x:", "",
             "| budget / equal's mean | avg latency vs budget | Q(T)/T (s) | Q(T/4)/(T/4) (s) "
             "| kept ranks | realised / planned round |", "|---|---|---|---|---|---|"]
    for r in v["rows"]:
        binding = r["share"] * v["equal_s"] < 0.95 * v["minmax_s"]
        lines.append(f"| {r['share']} | {pct(r['over'], 2)}"
                     + ("" if binding else " (not binding)")
                     + f" | {r['q_end']:.2g} | {r['q_quarter']:.2g} | {100 * r['kept']:.0f} % | "
                     f"{r['real_over_plan']:.3f} |")
    binding = [r for r in v["rows"] if r["share"] * v["equal_s"] < 0.95 * v["minmax_s"]]
    ratio = [r["real_over_plan"] for r in v["rows"]]
    lines += ["", f"Where the budget binds the average ends within "
              f"{100 * max(abs(r['over']) for r in binding):.2f} % of it. The round's realised "
              f"latency is {100 * (min(ratio) - 1):.1f}–{100 * (max(ratio) - 1):.1f} % above "
              "its plan."]
    return {"lyapunov": "\n".join(lines) + "\n"}


# ---------------------------------------------------------------------- regret

def regret(rounds: int = 200) -> dict:
    out = ROOT / "results" / "regret"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "regret.py"), "--rounds",
                    str(rounds), "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    with (out / "regret.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {"rounds": rounds, "rows": rows}


def render_regret(v: dict) -> dict[str, str]:
    rows = v["rows"]
    cols = list(rows[0])
    lines = ["| " + " | ".join(c.replace("_", " ") for c in cols) + " |",
             "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            try:
                cells.append(f"{float(r[c]):.4g}")
            except ValueError:
                cells.append(r[c])
        lines.append("| " + " | ".join(cells) + " |")
    by = {r["controller"]: r for r in rows}
    key = "relative_regret"
    lines += ["", f"TSFA's regret is {100 * float(by['tsfa'][key]):.1f} % of the hindsight "
              f"objective; greedy's is {100 * float(by['greedy'][key]):.1f} %."]
    return {"regret": "\n".join(lines) + "\n"}


# ---------------------------------------------------------------------- study

STUDY = ROOT / "results" / "tsfa_study"
CHANNEL_NAMES = {"rayleigh_fast": "fast Rayleigh", "rician_k5": "Rician K = 5",
                 "jakes_slow": "slow Jakes"}


def study() -> dict:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "tsfa_study.py"), "--out",
                    str(STUDY)], check=True, cwd=ROOT, capture_output=True)
    with (STUDY / "study.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:  # realised over planned upload time of each run's clients
        name = r["controller"] + (f"_{r['share']}" if r["share"] else "")
        with (STUDY / r["channel"] / f"seed{r['seed']}" / name / "clients.csv").open() as fh:
            cl = [c for c in csv.DictReader(fh) if c.get("realised_upload_s") not in ("", None)
                  and float(c["planned_upload_s"] or 0) > 0]
        r["real_over_plan"] = float(np.mean([float(c["realised_upload_s"])
                                             / float(c["planned_upload_s"]) for c in cl]))
    return {"rows": rows, "table": (STUDY / "study.md").read_text()}


def _study_rows(v: dict, **match) -> list[dict]:
    return [r for r in v["rows"] if all(str(r[k]) == str(x) for k, x in match.items())]


def render_study(v: dict) -> dict[str, str]:
    seeds = sorted({r["seed"] for r in v["rows"]})
    over = {}  # (channel, controller, share) -> per-seed over-budget
    for r in v["rows"]:
        if r["over_budget"] != "":
            over.setdefault((r["channel"], r["controller"], r["share"]), []).append(
                float(r["over_budget"]))
    per_seed = ["| channel | share | tsfa (seeds " + " / ".join(seeds) + ") | greedy (seeds "
                + " / ".join(seeds) + ") | min-max / equal (full rank) |",
                "|---|---|---|---|---|"]
    ratio = {}
    for ch in CHANNEL_NAMES:
        eq = {r["seed"]: float(r["avg_latency_s"]) for r in _study_rows(v, channel=ch,
                                                                        controller="equal")}
        mm = {r["seed"]: float(r["avg_latency_s"]) for r in _study_rows(v, channel=ch,
                                                                        controller="minmax")}
        ratio[ch] = [mm[s] / eq[s] for s in seeds]
        for i, share in enumerate(("0.5", "0.7", "0.9")):
            t = " / ".join(f"{100 * x:+.1f}" for x in over[(ch, "tsfa", share)])
            g = " / ".join(f"{100 * x:+.1f}" for x in over[(ch, "greedy", share)])
            r_ = " / ".join(f"{x:.3f}" for x in ratio[ch]) if i == 0 else ""
            per_seed.append(f"| {CHANNEL_NAMES[ch]} | {share} | {t} | {g} | {r_} |")

    def span(vals: list[float], digits: int = 1) -> str:
        return f"{100 * min(vals):+.{digits}f} % to {100 * max(vals):+.{digits}f} %"

    t70 = [x for ch in CHANNEL_NAMES for x in over[(ch, "tsfa", "0.7")]]
    t50 = [x for ch in CHANNEL_NAMES for x in over[(ch, "tsfa", "0.5")]]
    t90 = [x for ch in CHANNEL_NAMES for x in over[(ch, "tsfa", "0.9")]]
    g_jakes = [x for s in ("0.5", "0.7") for x in over[("jakes_slow", "greedy", s)]]
    spread = [np.std(over[(ch, "greedy", s)]) / max(np.std(over[(ch, "tsfa", s)]), 1e-12)
              for ch in CHANNEL_NAMES for s in ("0.5", "0.7")]
    bits = []
    for ch in CHANNEL_NAMES:
        for s in ("0.5", "0.7"):
            t = np.mean([float(r["uplink_mbit"]) for r in _study_rows(v, channel=ch,
                                                                      controller="tsfa", share=s)])
            g = np.mean([float(r["uplink_mbit"]) for r in _study_rows(v, channel=ch,
                                                                      controller="greedy",
                                                                      share=s)])
            bits.append(t / g - 1)
    acc = [float(r["accuracy_at_common_time"]) for r in v["rows"]]
    slow = ratio["jakes_slow"]
    findings = f"""- **TSFA holds the long-term budget, up to a start-up term.** At 70 % it ends
  within {span(t70)} of the budget in all {len(t70)} runs; at 50 %, {span(t50)}. Round 0
  always sends everything (Q(0) = 0), and over 30 rounds that spike alone is worth a
  few percent; the 2,000-round bench above shows the queue paying it back. At 90 % the
  budget is often above the full-rank min-max latency (min-max / equal is
  {min(min(x) for x in ratio.values()):.3f}–{max(max(x) for x in ratio.values()):.3f}
  over the cells), and TSFA then sends every rank and stays under ({span(t90)}).
- **Greedy does not hold the budget.** It treats the budget as a per-round deadline:
  on slow Jakes at 50 % and 70 % it ends {span(g_jakes)} against the budget. Its spread
  over seeds is {min(spread):.1f}–{max(spread):.1f} times TSFA's in the six binding cells.
- **Bits.** At 50 % and 70 % TSFA uploads {span(bits)} against greedy's Mbit (negative:
  fewer).
- **Accuracy does not separate the controllers here.** At the simulated time every run
  of a cell has reached, accuracy is {min(acc):.2f}–{max(acc):.2f} across all runs. The
  smoke task (synthetic keywords, tiny-bert) is too easy for it.
- **Slow fading strains the planner.** On slow Jakes min-max is
  {" / ".join(f"{100 * (x - 1):+.1f} %" for x in slow)} against equal (seeds
  {" / ".join(seeds)}).
"""
    unb = ["| channel | TSFA at 70 %: mean realised / planned upload (seeds "
           + " / ".join(seeds) + ") | equal (seeds " + " / ".join(seeds) + ") |", "|---|---|---|"]
    for ch in CHANNEL_NAMES:
        t = [r["real_over_plan"] for r in _study_rows(v, channel=ch, controller="tsfa",
                                                      share="0.7")]
        e = [r["real_over_plan"] for r in _study_rows(v, channel=ch, controller="equal")]
        unb.append(f"| {CHANNEL_NAMES[ch]} | " + " / ".join(f"{x:.3f}" for x in t) + " | "
                   + " / ".join(f"{x:.3f}" for x in e) + " |")
    vs = sorted({r["controller"] for r in v["rows"] if r["controller"].startswith("tsfa_v")},
                key=lambda c: float(c[6:]))
    choose = ["| v | " + " | ".join(f"{CHANNEL_NAMES[c]} (seeds {' / '.join(seeds)})"
                                   for c in CHANNEL_NAMES) + " |", "|---|---|---|---|"]
    for name, label in [(vs[0], vs[0][6:]), ("tsfa", "4"), *[(c, c[6:]) for c in vs[1:]]]:
        cells = [" / ".join(f"{100 * x:+.1f}" for x in over[(ch, name, "0.7")])
                 for ch in CHANNEL_NAMES]
        choose.append(f"| {label} | " + " | ".join(cells) + " |")
    return {"study-table": v["table"], "study-per-seed": "\n".join(per_seed) + "\n",
            "study-findings": findings, "unbiased": "\n".join(unb) + "\n",
            "choosing-v": "\n".join(choose) + "\n"}


GROUPS = {
    "soft": (soft, render_soft),
    "quadrature": (quadrature, render_quadrature),
    "lyapunov": (lyapunov, render_lyapunov),
    "regret": (regret, render_regret),
    "study": (study, render_study),
}
FAST = ("soft", "quadrature")
BLOCKS = {  # the doc's blocks each group renders
    "soft": ["soft"], "quadrature": ["quadrature"], "lyapunov": ["lyapunov"],
    "regret": ["regret"],
    "study": ["study-table", "study-per-seed", "study-findings", "unbiased", "choosing-v"],
}


def blocks(text: str) -> dict[str, str]:
    """The claim blocks of a doc: name -> body."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def write_blocks(text: str, new: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        body = new.get(m["name"], m["body"])
        return f"<!-- claims:{m['name']} -->\n{body}<!-- /claims:{m['name']} -->"
    return BLOCK.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--from-results", action="store_true",
                    help="render from --out/<group>.json instead of recomputing")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "claims")
    args = ap.parse_args(argv)
    names = [g for g in args.groups.split(",") if g]
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        print(f"error: --groups: unknown {', '.join(unknown)} (allowed: {', '.join(GROUPS)})",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rendered: dict[str, str] = {}
    for name in names:
        compute, render = GROUPS[name]
        saved = args.out / f"{name}.json"
        if args.from_results:
            if not saved.is_file():
                print(f"error: --from-results: no {saved}; run without it first",
                      file=sys.stderr)
                return 2
            values = json.loads(saved.read_text())
        else:
            values = compute()
            saved.write_text(json.dumps(values, indent=1, default=str))
        text = render(values)
        (args.out / f"{name}.md").write_text("\n".join(f"<!-- {k} -->\n{b}"
                                                       for k, b in text.items()))
        rendered.update(text)
        print(f"{name}: wrote {args.out / name}.json and .md", flush=True)
    if args.write_docs:
        DOC.write_text(write_blocks(DOC.read_text(), rendered))
        print(f"rewrote the blocks {', '.join(rendered)} in {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
