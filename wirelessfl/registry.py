"""Name -> class registries for every plug-in kind, with entry points and ``module:Class``.

Every kind of plug-in (channel and path-loss models, aggregators, compressors,
controllers, client selectors, models, data sets) is a small class registered by name
in a :class:`Registry`. A scenario names it by its registered name, by the name an
installed package gives it through the kind's entry-point group (see
:data:`ENTRY_POINT_GROUPS`), or directly as ``"package.module:Class"``.

A ``module:Class`` name is imported only when it has that exact syntax (dotted
identifiers, one colon, one identifier), and the class must subclass the registry's
base class: a typo never runs an arbitrary module's code past its import, and a
class of the wrong kind is refused before anything else runs.

Only the standard library and pydantic are used here, so that ``channels/`` (numpy
only) can depend on this module.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

#: The entry-point group of each plug-in kind (``[options.entry_points]`` of a package).
ENTRY_POINT_GROUPS = {
    "channel": "wirelessfl.channels",
    "path-loss model": "wirelessfl.pathloss",
    "aggregator": "wirelessfl.aggregators",
    "compressor": "wirelessfl.compressors",
    "controller": "wirelessfl.controllers",
    "client selector": "wirelessfl.selectors",
    "model": "wirelessfl.models",
    "data set": "wirelessfl.datasets",
    "logger": "wirelessfl.loggers",
}

IMPORT_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _a(word: str) -> str:
    """``word`` with its indefinite article: "an aggregator", "a channel"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


class NoParams(BaseModel):
    """Parameters of a plug-in that takes none."""

    model_config = ConfigDict(extra="forbid")


class UnknownNameError(LookupError):
    """A plug-in name that no registry entry, entry point or import path resolves.

    Attributes
    ----------
    name : str
        The name that was asked for.
    available : list of str
        The registered names, sorted.
    detail : str
        Why an import path did not resolve, or ``""``.
    """

    def __init__(self, name: str, available: list[str], detail: str = "") -> None:
        self.name = name
        self.available = available
        self.detail = detail
        msg = f"unknown name {name!r}; available: {', '.join(available)}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class Registry(Generic[T]):
    """A name -> class registry with a decorator, entry points and ``module:Class`` names.

    Parameters
    ----------
    kind : str
        What the registry holds, used in messages; also selects the entry-point
        group in :data:`ENTRY_POINT_GROUPS` unless ``entry_point_group`` is given.
    base : type, optional
        Every entry must subclass it (checked for entry points and import paths).
    entry_point_group : str, optional
        Entry-point group that external packages use to add entries.
    """

    def __init__(self, kind: str, base: type | None = None,
                 entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group or ENTRY_POINT_GROUPS.get(kind)
        self._entries: dict[str, type[T]] = {}
        self._entry_points_loaded = False

    def register(self, name: str):
        """Class decorator that registers ``cls`` under ``name`` and sets ``cls.name``."""

        def deco(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return deco

    def _checked(self, obj: object, name: str) -> type[T]:
        """``obj`` if it is a class of this registry's kind, else UnknownNameError."""
        if not isinstance(obj, type) or (self.base is not None
                                          and not issubclass(obj, self.base)):
            what = self.base.__name__ if self.base is not None else "class"
            raise UnknownNameError(name, self.names(),
                                   f"{name!r} is not {_a(self.kind)} ({_a(what)} subclass)")
        return obj  # type: ignore[return-value]

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep  # type: ignore[assignment]  # loaded on use

    def names(self) -> list[str]:
        """Registered names, sorted (entry points included)."""
        self._load_entry_points()
        return sorted(self._entries)

    def get(self, name: str) -> type[T]:
        """Return the class registered as ``name`` or importable as ``module:Class``.

        Raises
        ------
        UnknownNameError
            When nothing resolves ``name``, or it resolves to something that is not
            a class of this registry's kind.
        """
        if name not in self._entries:
            self._load_entry_points()
        entry = self._entries.get(name)
        if entry is not None:
            if isinstance(entry, type):
                return entry
            try:  # an entry point, loaded on first use
                cls = self._checked(entry.load(), name)  # type: ignore[attr-defined]
            except UnknownNameError:
                raise
            except Exception as exc:  # noqa: BLE001  (a broken third-party package)
                raise UnknownNameError(name, self.names(),
                                       f"its entry point failed to load: {exc}") from None
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls
        if ":" in name:
            if not IMPORT_NAME.match(name):
                raise UnknownNameError(name, self.names(),
                                       "an import path is written package.module:Class")
            module_name, _, attr = name.partition(":")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise UnknownNameError(name, self.names(), str(exc)) from None
            return self._checked(obj, name)
        raise UnknownNameError(name, self.names())

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries
