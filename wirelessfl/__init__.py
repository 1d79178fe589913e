"""wirelessfl: federated LoRA fine-tuning of pretrained transformers over simulated
wireless edge networks, with resource optimisation.

The Python API (:mod:`wirelessfl.api`) is loaded on first use, so ``import
wirelessfl`` stays cheap::

    import wirelessfl
    r = wirelessfl.run("scenarios/smoke.yaml", rounds=2, output=None)
    r.metrics.tail()
"""

from __future__ import annotations

from typing import Any

# The API functions are defined on the package itself: a lazy attribute would be shadowed
# by a submodule of the same name once that is imported (the sweep driver is
# ``wirelessfl.sweeper`` for that reason). ``wirelessfl.api`` imports nothing heavy.
from wirelessfl.api import Run, load, load_sweep, resolve_scenario, run, sweep

__all__ = ["Run", "__version__", "load", "load_sweep", "resolve_scenario", "run", "sweep"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("wirelessfl")
        except PackageNotFoundError:
            return "unknown"
    raise AttributeError(f"module 'wirelessfl' has no attribute {name!r}")
