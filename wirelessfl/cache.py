"""The on-disk cache of derived data (tokenised data sets, dequantised models, the
learning facts `wirelessfl validate` reads without torch)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    """``$WIRELESSFL_CACHE`` (default ``~/.cache/wirelessfl``), or None when it is ``off``."""
    env = os.environ.get("WIRELESSFL_CACHE", "")
    if env.lower() == "off":
        return None
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wirelessfl"
