"""A bounded, unsurprising YAML reader for scenario files and ``--set`` values.

PyYAML's ``safe_load`` is safe from code execution, but not from everything a user can
type by mistake or an attacker can craft:

* **duplicate keys** silently keep the last value: here they are an error naming the
  key and both lines;
* **YAML 1.1 scalars**: ``1:30`` is 90 (sexagesimal), ``010`` is 8 (octal), ``yes`` and
  ``off`` are booleans, while ``1e6`` is a *string*. Here scalars follow the YAML 1.2
  core schema: ``true``/``false``, decimal (and ``0o``/``0x``) integers, floats with or
  without a dot (``1e6``), ``.inf``/``.nan``; anything else is a string;
* **aliases** that expand beyond :data:`MAX_EXPANDED_NODES` nodes ("billion laughs"),
  nesting deeper than :data:`MAX_DEPTH`, and files over :data:`MAX_BYTES` are refused;
* bytes that are not UTF-8 get a message with the offending byte's position.

Every failure is a :class:`~wirelessfl.errors.ScenarioError` with one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from wirelessfl.errors import ScenarioError

MAX_BYTES = 1 << 20  # 1 MiB: a scenario is a page of text
MAX_DEPTH = 32
MAX_EXPANDED_NODES = 100_000
MAX_ALIASES = 100


class _Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core scalars, bounded depth and duplicate-key errors."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):  # noqa: ANN001
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ScenarioError("scenario file", f"more than {MAX_ALIASES} aliases (line "
                                    f"{mark.line + 1}); write the values out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ScenarioError("scenario file", f"nesting deeper than {MAX_DEPTH} levels "
                                    f"at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise ScenarioError("scenario file", f"a mapping key at line "
                                    f"{key_node.start_mark.line + 1} is not a plain value"
                                    ) from None
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(str(key), f"appears twice in one mapping (lines "
                                    f"{seen[key]} and {line}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core schema resolvers, replacing PyYAML's YAML 1.1 ones
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool",
                                                   "tag:yaml.org,2002:int",
                                                   "tag:yaml.org,2002:float",
                                                   "tag:yaml.org,2002:timestamp")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                              re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int",
                              re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))


def _construct_int(loader: _Loader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)  # decimal, leading zeros included: 010 is ten


def _construct_float(loader: _Loader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _construct_bool(loader: _Loader, node: yaml.Node) -> bool:
    return loader.construct_scalar(node).lower() == "true"


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes the composed graph holds once every alias is expanded (memoised)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_EXPANDED_NODES + 1  # a cycle counts as too big
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[key]


def loads(text: str, where: str = "", key: str = "scenario file") -> Any:
    """Parse YAML text with the bounds and scalar rules of this module.

    Errors name ``key``; ``where`` (a file name) starts their message.
    """
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise ScenarioError(key, f"{where}{': ' if where else ''}aliases expand to more "
                                f"than {MAX_EXPANDED_NODES:,} values; write the values out")
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise ScenarioError(key, f"{where}{': ' if where else ''}character "
                            f"{exc.character!r} at position {exc.position} is not allowed in "
                            "YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(key, f"{where}{at}: {problem}" if where
                            else f"invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise ScenarioError(key, "nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        if "digits" not in str(exc):
            raise
        raise ScenarioError(key, f"{where}{': ' if where else ''}a number with more than "
                            "4,300 digits; write it in scientific notation (1e300) or "
                            "smaller") from None
    finally:
        if loader is not None:
            loader.dispose()


def read(path: str | Path) -> Any:
    """Read and parse a YAML file: size bound, UTF-8 with a clear message, :func:`loads`."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError("scenario file", f"{str(p)!r} does not exist or is not a file")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise ScenarioError("scenario file", f"{str(p)!r} is {size:,} bytes; a scenario is at "
                            f"most {MAX_BYTES:,}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ScenarioError("scenario file", f"{str(p)!r} is not UTF-8 text (byte "
                            f"0x{data[err.start]:02x} at line {line}); save it as UTF-8"
                            ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ScenarioError("scenario file", f"{str(p)!r} holds NUL bytes: not a text file")
    return loads(text, str(p))
