"""Update compressors; importing this package registers them."""

from wirelessfl.compression import identity, soft, topk  # noqa: F401
from wirelessfl.compression.base import (
    COMPRESSORS,
    Compressed,
    Compressor,
    error_profiles,
    register_compressor,
)

__all__ = ["COMPRESSORS", "Compressed", "Compressor", "error_profiles", "register_compressor"]
