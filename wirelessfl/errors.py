"""User-facing errors: one exception family, one line each, naming the YAML key."""

from __future__ import annotations

#: the longest value an error message echoes (characters); longer ones are cut
ECHO_LIMIT = 80
#: the longest error line the command line prints
LINE_LIMIT = 400


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WirelessFLError(Exception):
    """A user mistake (scenario, plug-in name, budget, missing optional package).

    The CLI prints ``str(err)`` on one line and exits with status 2.

    Parameters
    ----------
    key : str
        Dotted YAML key path the mistake is about (``"radio.uplink_bandwidth_hz"``),
        or a short subject such as ``"scenario file"``.
    message : str
        What is wrong and what is allowed.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ScenarioError(WirelessFLError):
    """The scenario YAML or a ``--set`` override is invalid."""


class PluginError(WirelessFLError):
    """An unknown plug-in name or invalid plug-in parameters."""


class MissingPackageError(WirelessFLError):
    """An optional package (model weights, data set) is not installed."""


class OutputError(WirelessFLError):
    """The results folder cannot be written without losing earlier results."""
