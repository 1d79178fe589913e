"""Trace replay: small-scale gains read from a CSV of measurements or another simulator."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from channels.base import Channel, register_channel
from channels.law import equal_probability_nodes


class TraceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., description="CSV with columns time_s, link, gain_db")
    loop: bool = Field(True, description="repeat the trace after its last sample")


def read_trace(path: str | Path) -> tuple[float, np.ndarray]:
    """Sample spacing (s) and gains (n_links, n_samples) from a trace CSV.

    Every link must have a sample at every time in the file, the times equally
    spaced; rows may come in any order. ``gain_db`` is the small-scale power gain
    in dB (path loss is applied separately by the scenario's path-loss model).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"trace file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"trace {p.name} is not UTF-8 text (byte {err.start})") from None
    reader = csv.DictReader(text.splitlines())
    need = {"time_s", "link", "gain_db"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise ValueError(f"trace {p.name} needs columns time_s, link, gain_db")
    rows = []
    seen: dict[tuple[float, int], int] = {}
    for i, r in enumerate(reader, start=2):  # line 1 is the header
        try:
            t, link, g = float(r["time_s"]), int(r["link"]), float(r["gain_db"])
        except (TypeError, ValueError):
            raise ValueError(f"trace {p.name} line {i}: time_s, link and gain_db must be "
                             "numbers (link an integer)") from None
        if not (np.isfinite(t) and np.isfinite(g)) or t < 0 or link < 0:
            raise ValueError(f"trace {p.name} line {i}: time_s must be finite and >= 0, "
                             "link >= 0, gain_db finite")
        if (t, link) in seen:
            raise ValueError(f"trace {p.name} line {i}: link {link} at time {t} repeats line "
                             f"{seen[(t, link)]}")
        seen[(t, link)] = i
        rows.append((t, link, g))
    if not rows:
        raise ValueError(f"trace {p.name} has no rows")
    arr = np.array(rows)
    times = np.unique(arr[:, 0])
    links = np.unique(arr[:, 1]).astype(int)
    if links[0] != 0 or links[-1] != len(links) - 1:
        raise ValueError(f"trace {p.name}: links must be numbered 0..L-1")
    if len(arr) != len(times) * len(links):
        have = {(t, int(k)) for t, k, _ in rows}
        t, k = next((t, int(k)) for t in times for k in links if (t, int(k)) not in have)
        raise ValueError(f"trace {p.name}: link {k} has no sample at time {t} (every link "
                         "needs a sample at every time)")
    if len(times) < 2:
        raise ValueError(f"trace {p.name}: needs at least two sample times")
    steps = np.diff(times)
    if not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError(f"trace {p.name}: sample times must be equally spaced")
    if steps[0] < 1e-6:
        raise ValueError(f"trace {p.name}: samples {steps[0]:.3g} s apart; at least 1e-6 s")
    gains = np.full((len(links), len(times)), np.nan)
    gains[arr[:, 1].astype(int), np.searchsorted(times, arr[:, 0])] = 10 ** (arr[:, 2] / 10)
    if not np.all(np.isfinite(gains) & (gains > 0)):  # e.g. gain_db of -1e6 underflows
        raise ValueError(f"trace {p.name}: gains must be positive and finite in linear "
                         "scale (gain_db between about -300 and 300)")
    return float(steps[0]), gains


@register_channel("trace")
class TraceReplay(Channel):
    """Replay of a recorded gain trace; client k replays link k.

    Simulated time 0 maps to the trace's first sample, and sample j holds over
    ``[j dt, (j + 1) dt)``. With ``loop`` the trace repeats; without it the last
    sample holds. The coherence time is the sample spacing dt.
    """

    per_link = False

    Params = TraceParams

    def __init__(self, params: TraceParams | None = None) -> None:
        super().__init__(params)
        self.coherence_time_s, self._gains = read_trace(self.params.path)

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        if n_links > self._gains.shape[0]:
            raise ValueError(f"the trace has {self._gains.shape[0]} links; "
                             f"{n_links} clients need one each")
        self.n_links = int(n_links)

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each link's empirical law over the whole trace (16 equal-probability bins)."""
        g = self._gains[: max(self.n_links, 1)]
        if g.shape[1] < 16:
            return g, np.full(g.shape, 1.0 / g.shape[1])
        return equal_probability_nodes(g)

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        idx = self.block_index(np.asarray(times_s, dtype=float))
        n = self._gains.shape[1]
        idx = np.mod(idx, n) if self.params.loop else np.minimum(idx, n - 1)
        return self._gains[: self.n_links, idx]
