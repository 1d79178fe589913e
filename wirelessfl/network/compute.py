"""Device compute profiles: sustained training throughput and energy per FLOP.

The numbers are nominal, documented assumptions (docs/wireless-model.md), not
measurements of a specific product: a scenario picks a profile by name and the
simulator divides the measured training FLOPs by the profile's FLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceProfile:
    """A client device class.

    Attributes
    ----------
    name : str
        Profile name used in ``clients.device``.
    flops_per_s : float
        Sustained FLOP/s reached by fp32 training (well below peak).
    joules_per_flop : float
        Energy per FLOP of that training, J.
    memory_bytes : float
        Memory a training run may use on the device (weights, optimiser state,
        activations), bytes.
    """

    name: str
    flops_per_s: float
    joules_per_flop: float
    memory_bytes: float = float("inf")

    def compute_time_s(self, flops: float) -> float:
        """Seconds to execute ``flops`` floating-point operations."""
        return float(flops) / self.flops_per_s


GIB = float(1 << 30)

DEVICE_PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile("iot", 2e9, 5e-10, 0.5 * GIB),  # microcontroller NPU / low-end CPU
        DeviceProfile("phone", 2e10, 1e-10, 4 * GIB),  # smartphone SoC, fp32 training
        DeviceProfile("jetson", 2e11, 3e-11, 8 * GIB),  # Jetson Orin class edge module
        DeviceProfile("laptop_gpu", 2e12, 2e-11, 8 * GIB),  # laptop discrete GPU
    )
}
