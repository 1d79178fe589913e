"""Channel-model plug-ins for wirelessfl (numpy only).

Importing this package registers the built-in models. See :mod:`channels.base` for
the protocol and ``docs/channels.md`` for how to write a model in one file.
"""

from channels import awgn, cdl, jakes, nakagami, rayleigh, rician, tdl, trace  # noqa: F401
from channels.base import CHANNELS, Channel, Registry, UnknownNameError, register_channel

__all__ = ["CHANNELS", "Channel", "Registry", "UnknownNameError", "register_channel"]
