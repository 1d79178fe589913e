"""The wideband figure of docs/channels.md: flat against sub-band rate, and the
controllers on scenarios/wideband.yaml.

(a) TDL-C, 300 ns, 18.36 MHz (64 subcarriers), 2,000 links at one instant: the mean
spectral efficiency over the band, per subcarrier (the reference), from 8 sub-band
gains, and from the band's mean gain (flat), against the SNR. Printed: how much the
flat rate overstates the per-subcarrier one, and the largest per-link error of the
sub-band rate, from -10 to 30 dB.
(b) scenarios/wideband.yaml with TSFA + SOFT, min-max and equal bandwidth: the mean
round latency (realised and planned) against the budget, and the final accuracy.

Writes ``docs/figures/wideband.png`` and ``results/wideband/figure.json``.
Usage: python scripts/wideband_figure.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import channels  # noqa: E402, F401
import wirelessfl  # noqa: E402
from channels.base import CHANNELS  # noqa: E402

SNR_DB = np.arange(-10, 31, 2.5)


def rates() -> dict:
    ch = CHANNELS.get("tdl").from_dict({
        "profile": "C", "delay_spread_s": 300e-9, "speed_mps": 1.5,
        "carrier_frequency_hz": 3.5e9, "bandwidth_hz": 18.36e6, "subbands": 8})
    ch.reset(2000, np.random.default_rng(0))
    t = np.array([0.25])
    h = ch.frequency_response(t)[:, 0]  # (links, F)
    per_sc = np.abs(h) ** 2
    sub = ch.subband_gains(t)[:, 0]  # (links, Q)
    flat = ch.gains(t)[:, 0]  # (links,)
    out = {"snr_db": SNR_DB.tolist(), "subcarrier": [], "subband": [], "flat": []}
    worst_sub, worst_flat = 0.0, 0.0
    for snr in 10 ** (SNR_DB / 10):
        ref = np.log2(1 + snr * per_sc).mean(axis=1)
        s = np.log2(1 + snr * sub).mean(axis=1)
        f = np.log2(1 + snr * flat)
        worst_sub = max(worst_sub, float(np.max(np.abs(s / ref - 1))))
        worst_flat = max(worst_flat, float(np.max(f / ref - 1)))
        out["subcarrier"].append(float(ref.mean()))
        out["subband"].append(float(s.mean()))
        out["flat"].append(float(f.mean()))
    over = np.array(out["flat"]) / np.array(out["subcarrier"]) - 1
    out["flat_overstatement_at_0db"] = float(over[SNR_DB == 0][0])
    out["flat_overstatement_at_20db"] = float(over[SNR_DB == 20][0])
    out["flat_worst_link"] = worst_flat
    out["subband_worst_link_error"] = worst_sub
    return out


def controllers() -> dict:
    out = {}
    for name in ("tsfa", "minmax", "equal"):
        run = wirelessfl.run("scenarios/wideband.yaml", output=None,
                             method__controller=name)
        m = run.metrics
        out[name] = {"latency_s": float(m["round_latency_s"].mean()),
                     "planned_s": float(m["planned_latency_s"].mean()),
                     "accuracy": float(m["accuracy"].iloc[-1]),
                     "uplink_mbit": float(m["uplink_bits"].mean() / 1e6)}
        print(name, out[name], flush=True)
    out["budget_s"] = run.config["controller"]["latency_budget_s"]
    return out


def main() -> None:
    r, c = rates(), controllers()
    print(f"flat overstates the rate by {r['flat_overstatement_at_0db']:.1%} at 0 dB, "
          f"{r['flat_overstatement_at_20db']:.1%} at 20 dB (one link: "
          f"{r['flat_worst_link']:.1%}); 8 sub-bands: worst link "
          f"{r['subband_worst_link_error']:.2%}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(r["snr_db"], r["subcarrier"], "k-", label="per subcarrier (64)")
    a.plot(r["snr_db"], r["subband"], "o", ms=4, label="8 sub-bands")
    a.plot(r["snr_db"], r["flat"], "--", label="flat (band-mean gain)")
    a.set(xlabel="SNR (dB)", ylabel="mean spectral efficiency (bit/s/Hz)",
          title="(a) TDL-C 300 ns, 18.36 MHz, 2,000 links")
    a.legend()
    names = ["tsfa", "minmax", "equal"]
    x = np.arange(3)
    b.bar(x - 0.2, [c[n]["latency_s"] for n in names], 0.4, label="realised")
    b.bar(x + 0.2, [c[n]["planned_s"] for n in names], 0.4, label="planned")
    b.axhline(c["budget_s"], color="k", ls=":", label="TSFA budget")
    for i, n in enumerate(names):
        b.text(i, c[n]["latency_s"] * 1.02, f"acc {c[n]['accuracy']:.3f}", ha="center",
               fontsize=8)
    b.set_xticks(x, ["TSFA + SOFT", "min-max", "equal"])
    b.set(ylabel="mean round latency (s)", title="(b) scenarios/wideband.yaml, 20 rounds")
    b.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    Path("docs/figures").mkdir(parents=True, exist_ok=True)
    fig.savefig("docs/figures/wideband.png", dpi=110)
    Path("results/wideband").mkdir(parents=True, exist_ok=True)
    Path("results/wideband/figure.json").write_text(
        json.dumps({"rates": r, "controllers": c}, indent=2) + "\n")
    print("wrote docs/figures/wideband.png and results/wideband/figure.json")


if __name__ == "__main__":
    main()
