"""Unit conversions (pure functions, numpy-vectorised)."""

from __future__ import annotations

import numpy as np


def db_to_lin(x_db):
    """Decibels -> linear ratio: ``10 ** (x / 10)``."""
    return np.power(10.0, np.asarray(x_db, dtype=float) / 10.0)


def lin_to_db(x):
    """Linear ratio -> decibels: ``10 log10(x)``."""
    return 10.0 * np.log10(np.asarray(x, dtype=float))


def dbm_to_w(x_dbm):
    """dBm -> watts: ``10 ** ((x - 30) / 10)``."""
    return db_to_lin(np.asarray(x_dbm, dtype=float) - 30.0)
