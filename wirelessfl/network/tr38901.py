"""3GPP TR 38.901 (v17) path loss: UMi street canyon and UMa, LOS and NLOS.

Formulas from Table 7.4.1-1 (path loss, shadow-fading std) and Table 7.4.2-1
(LOS probability). Distances: ``d_2D`` is the ground distance the placement gives,
``d_3D = sqrt(d_2D^2 + (h_BS - h_UT)^2)``; ``f_c`` in GHz inside the formulas. The
breakpoint distance uses effective heights ``h' = h - h_E``:
``d_BP' = 4 h_BS' h_UT' f_c / c``. ``h_E = 1`` m, except in UMa for UTs of 13 m and
more (the table's note 1): there each link draws ``h_E = 1`` m with probability
``1 / (1 + C(d_2D, h_UT))``, else uniformly from ``{12, 15, ..., h_UT - 1.5}`` m, with
``C = ((h_UT - 13) / 10)^1.5 g(d_2D)``, ``g = 1.25 (d_2D / 100)^3 exp(-d_2D / 150)`` beyond
18 m and 0 within. Below 10 m the 10 m value is used (the tables' validity range starts
there).

``los: auto`` draws each client's LOS state once, with the table's probability;
``los: los`` / ``nlos`` force it. The NLOS loss is ``max(PL_LOS, PL'_NLOS)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.network.pathloss import PATHLOSS, SPEED_OF_LIGHT_M_S, PathLoss

H_E_M = 1.0


class TR38901Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    carrier_frequency_hz: float = Field(3.5e9, ge=0.5e9, le=100e9, description="f_c")
    los: Literal["auto", "los", "nlos"] = Field("auto", description="LOS state per client")
    bs_height_m: float | None = Field(None, ge=2, le=150,
                                      description="h_BS, m (default: 10 UMi, 25 UMa)")
    ut_height_m: float = Field(1.5, ge=1.5, le=22.5, description="h_UT")
    shadowing: bool = Field(True, description="draw log-normal shadowing with the table's std")


def _breakpoint_m(h_bs: float, h_ut: float, fc_hz: float, h_e=H_E_M):
    """``d_BP' = 4 (h_BS - h_E)(h_UT - h_E) f_c / c``, metres (``h_e`` scalar or per link)."""
    return 4 * (h_bs - h_e) * (h_ut - h_e) * fc_hz / SPEED_OF_LIGHT_M_S


class TR38901(PathLoss):
    """Shared machinery of the 38.901 scenarios."""

    Params = TR38901Params
    default_bs_height_m: float = 10.0
    los_std_db: float = 4.0
    nlos_std_db: float = 6.0

    def __init__(self, params: TR38901Params | None = None) -> None:
        super().__init__(params)
        self.h_bs = self.params.bs_height_m or self.default_bs_height_m
        self.h_ut = self.params.ut_height_m
        self.fc_ghz = self.params.carrier_frequency_hz / 1e9
        self.d_bp = _breakpoint_m(self.h_bs, self.h_ut, self.params.carrier_frequency_hz)
        self.los_state: np.ndarray | None = None
        self.h_e: np.ndarray | None = None  # per-link effective environment height, drawn

    def breakpoint_m(self, d2d: np.ndarray) -> np.ndarray | float:
        """The breakpoint distance for links at ``d2d`` (per link once ``h_E`` is drawn)."""
        if self.h_e is not None and self.h_e.shape == np.shape(d2d):
            return _breakpoint_m(self.h_bs, self.h_ut, self.params.carrier_frequency_hz,
                                 self.h_e)
        return self.d_bp

    def draw_effective_height(self, d2d: np.ndarray, rng: np.random.Generator) -> None:
        """Draw each link's ``h_E`` (UMa overrides; 1 m elsewhere, no draw)."""

    def d3d(self, d2d: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(d2d, 10.0) ** 2 + (self.h_bs - self.h_ut) ** 2)

    def los_probability(self, d2d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_los_db(self, d2d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_nlos_prime_db(self, d2d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_nlos_db(self, d2d: np.ndarray) -> np.ndarray:
        return np.maximum(self.loss_los_db(d2d), self.loss_nlos_prime_db(d2d))

    def loss_db(self, distance_m: np.ndarray) -> np.ndarray:
        """Median loss in the LOS state drawn last (or forced); LOS if none drawn."""
        d = np.asarray(distance_m, dtype=float)
        los = self.los_state if self.los_state is not None and self.los_state.shape == d.shape \
            else np.full(d.shape, self.params.los != "nlos")
        return np.where(los, self.loss_los_db(d), self.loss_nlos_db(d))

    def draw(self, distance_m: np.ndarray, rng: np.random.Generator) -> None:
        """Draw each client's LOS state (kept for the run), its shadowing and, in UMa for
        tall UTs, its effective environment height (after the others, so that scenarios
        without it keep their draws)."""
        d = np.asarray(distance_m, dtype=float)
        if self.params.los == "auto":
            self.los_state = rng.random(d.shape) < self.los_probability(d)
        else:
            self.los_state = np.full(d.shape, self.params.los == "los")
        std = np.where(self.los_state, self.los_std_db, self.nlos_std_db)
        self.shadow_db = rng.standard_normal(d.shape) * std if self.params.shadowing else 0.0
        self.draw_effective_height(d, rng)

    @property
    def shadowing_std_db(self) -> float:  # per-state values are used in gain_db
        return self.los_std_db


@PATHLOSS.register("umi_street_canyon")
class UMiStreetCanyon(TR38901):
    """38.901 UMi street canyon (h_BS = 10 m); sigma_SF 4 dB LOS, 7.82 dB NLOS."""

    default_bs_height_m = 10.0
    los_std_db = 4.0
    nlos_std_db = 7.82

    def los_probability(self, d2d):
        d = np.asarray(d2d, dtype=float)
        with np.errstate(divide="ignore"):
            p = 18 / d + np.exp(-d / 36) * (1 - 18 / d)
        return np.where(d <= 18, 1.0, p)

    def loss_los_db(self, d2d):
        d2 = np.asarray(d2d, dtype=float)
        d3 = self.d3d(d2)
        pl1 = 32.4 + 21 * np.log10(d3) + 20 * np.log10(self.fc_ghz)
        d_bp = self.breakpoint_m(d2)
        pl2 = (32.4 + 40 * np.log10(d3) + 20 * np.log10(self.fc_ghz)
               - 9.5 * np.log10(d_bp**2 + (self.h_bs - self.h_ut) ** 2))
        return np.where(d2 <= d_bp, pl1, pl2)

    def loss_nlos_prime_db(self, d2d):
        d3 = self.d3d(np.asarray(d2d, dtype=float))
        return (35.3 * np.log10(d3) + 22.4 + 21.3 * np.log10(self.fc_ghz)
                - 0.3 * (self.h_ut - 1.5))


@PATHLOSS.register("uma")
class UMa(TR38901):
    """38.901 UMa (h_BS = 25 m); sigma_SF 4 dB LOS, 6 dB NLOS."""

    default_bs_height_m = 25.0
    los_std_db = 4.0
    nlos_std_db = 6.0

    def c_factor(self, d2d: np.ndarray) -> np.ndarray:
        """``C(d_2D, h_UT)`` of the table's note 1 (0 for UTs under 13 m)."""
        d = np.asarray(d2d, dtype=float)
        if self.h_ut < 13:
            return np.zeros(d.shape)
        g = np.where(d <= 18, 0.0, 1.25 * (d / 100) ** 3 * np.exp(-d / 150))
        return ((self.h_ut - 13) / 10) ** 1.5 * g

    def draw_effective_height(self, d2d, rng):
        d = np.asarray(d2d, dtype=float)
        if self.h_ut < 13:
            self.h_e = None  # h_E = 1 m for every link: nothing to draw
            return
        choices = np.arange(12.0, self.h_ut - 1.5 + 1e-9, 3.0)
        one = rng.random(d.shape) < 1.0 / (1.0 + self.c_factor(d))
        pick = choices[rng.integers(0, len(choices), d.shape)] if len(choices) else \
            np.full(d.shape, H_E_M)
        self.h_e = np.where(one, H_E_M, pick)

    def los_probability(self, d2d):
        d = np.asarray(d2d, dtype=float)
        h = self.h_ut
        c = 0.0 if h <= 13 else ((h - 13) / 10) ** 1.5
        with np.errstate(divide="ignore"):
            p = (18 / d + np.exp(-d / 63) * (1 - 18 / d)) * (
                1 + c * 1.25 * (d / 100) ** 3 * np.exp(-d / 150))
        return np.where(d <= 18, 1.0, p)

    def loss_los_db(self, d2d):
        d2 = np.asarray(d2d, dtype=float)
        d3 = self.d3d(d2)
        pl1 = 28.0 + 22 * np.log10(d3) + 20 * np.log10(self.fc_ghz)
        d_bp = self.breakpoint_m(d2)
        pl2 = (28.0 + 40 * np.log10(d3) + 20 * np.log10(self.fc_ghz)
               - 9 * np.log10(d_bp**2 + (self.h_bs - self.h_ut) ** 2))
        return np.where(d2 <= d_bp, pl1, pl2)

    def loss_nlos_prime_db(self, d2d):
        d3 = self.d3d(np.asarray(d2d, dtype=float))
        return (13.54 + 39.08 * np.log10(d3) + 20 * np.log10(self.fc_ghz)
                - 0.6 * (self.h_ut - 1.5))
