"""The ``wirelessfl`` command line: run, validate, sweep, plot, summarize, schema, channels.

Every user mistake is a :class:`WirelessFLError`: the command prints one line
``error: <key.path>: <what is wrong and what is allowed>`` and exits with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wirelessfl.errors import LINE_LIMIT, WirelessFLError, shorten

EXIT_USER_ERROR = 2


def guarded(func, *args) -> int:
    """Call ``func(*args)`` as a command: a user mistake prints one line, status 2.

    For the scripts in ``scripts/``, which take the same overrides as the CLI.
    Returns ``func``'s integer result, or 0 when it returns None.
    """
    import errno

    try:
        return int(func(*args) or 0)
    except WirelessFLError as err:
        print(shorten(f"error: {err}".replace("\n", " "), LINE_LIMIT), file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT,
                             errno.EPERM):
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"error: output.dir: cannot write{where}: {err.strerror}; free space or choose "
              "another folder, then rerun with --resume (every finished round was "
              "checkpointed)", file=sys.stderr)
        return EXIT_USER_ERROR


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set clients.count=20 (repeatable)")


class _Format(logging.Formatter):
    """``warning: message`` for warnings and errors, the bare message otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        return msg


def setup_logging(verbose: int, quiet: bool) -> None:
    """Logger ``wirelessfl`` to stderr: WARNING by default, INFO with -v, DEBUG with -vv,
    ERROR with --quiet."""
    logger = logging.getLogger("wirelessfl")
    for h in list(logger.handlers):
        if getattr(h, "_wirelessfl_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._wirelessfl_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_Format())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.ERROR if quiet else max(logging.DEBUG,
                                                    logging.WARNING - 10 * verbose))
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if not quiet:  # one line, like every other message of the command line
            print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _progress(args: argparse.Namespace) -> bool:
    """A progress bar unless --quiet, or stderr is not a terminal."""
    return not args.quiet and sys.stderr.isatty()


def cmd_run(args: argparse.Namespace) -> int:
    from wirelessfl.scenario import load_scenario

    sc = load_scenario(args.scenario, args.overrides)  # before torch is imported: fast errors
    out = Path(args.out) if args.out else None
    if args.resume and args.overwrite:
        from wirelessfl.errors import OutputError

        raise OutputError("--resume", "give --resume or --overwrite, not both")
    from wirelessfl.session import run_scenario

    path, summary = run_scenario(sc, overwrite=args.overwrite, progress=_progress(args),
                                 out_dir=out, resume=args.resume)
    q = summary.get("quality_metric", "accuracy")
    print(f"{sc.name}: final {q} {summary.get(f'final_{q}', float('nan')):.4f} after "
          f"{summary['sim_time_s']:.2f} simulated s ({summary['wall_time_s']:.1f} s wall); "
          f"results in {path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from wirelessfl.scenario import load_scenario

    sc = load_scenario(args.scenario, args.overrides)  # before anything heavy: fast errors
    from wirelessfl import preflight
    from wirelessfl.sizes import budget_warning, validate_summary

    plan, lines = preflight.plan(sc, offline=args.offline)  # radio errors before torch
    info = {**validate_summary(plan), **lines}
    print(f"{args.scenario}: valid")
    warning = budget_warning(plan)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    width = max(len(k) for k in info)
    for k, v in info.items():
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        print(f"  {k:<{width}}  {text}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from wirelessfl.scenario import json_schema

    text = json.dumps(json_schema(), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


def _default_out(paths: list[Path], sub: str) -> Path:
    if len(paths) == 1:
        return paths[0] / sub
    return Path("results") / sub


def cmd_plot(args: argparse.Namespace) -> int:
    from wirelessfl.plotting import plot_runs

    paths = [Path(r) for r in args.runs]
    labels = {}
    for item in args.label:
        spec, sep, text = item.rpartition("=")
        if not sep or not spec or not text:
            raise WirelessFLError("--label", f"expected LABEL=TEXT (a group's label or one "
                                  f"of its key=value parts, then =, then the new text), got "
                                  f"{item!r}")
        labels[spec] = text
    out = Path(args.out) if args.out else _default_out(paths, "plots")
    try:
        files = plot_runs(paths, out, args.round, labels)
    except ValueError as err:
        raise WirelessFLError("--label", str(err)) from None
    for p in files:
        print(p)
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    import csv

    from wirelessfl.analysis import find_runs, format_table, group_runs, summarize

    paths = [Path(r) for r in args.runs]
    rows = summarize(group_runs(find_runs(paths)), args.target)
    text = format_table(rows)
    out = Path(args.out) if args.out else _default_out(paths, "summary")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    with (out / "summary.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(text)
    print(f"written: {out / 'summary.md'}, {out / 'summary.csv'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from wirelessfl.sweeper import run_sweep

    out, rows = run_sweep(args.scenario, args.grid, args.overrides, args.jobs,
                          Path(args.out) if args.out else None, progress=_progress(args),
                          backend=args.backend, address=args.address,
                          resources=args.resources)
    failed = [r for r in rows if r["status"] == "failed"]
    print(f"sweep: {len(rows)} runs, {len(failed)} failed; index {out / 'sweep.csv'}")
    return 1 if failed else 0


def _plugin_lines(reg) -> list[str]:
    """One line per plug-in of ``reg`` and one per parameter (``required`` when it has no
    default)."""
    lines = []
    for name in reg.names():
        try:
            cls = reg.get(name)
        except LookupError as err:  # a broken third-party entry point
            lines.append(f"  {name:<14} (cannot be loaded: {err})")
            continue
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines.append(f"  {name:<14} {doc}")
        for field, info in cls.Params.model_fields.items():
            default = "required" if info.is_required() else repr(info.get_default(
                call_default_factory=True))
            desc = f"  {info.description}" if info.description else ""
            lines.append(f"      {field} = {default}{_range(info)}{desc}")
    return lines


def _range(info) -> str:
    """A field's bounds as ``  [lo, hi]`` (``(`` / ``)`` when open), or ``""``."""
    lo = hi = None
    for m in info.metadata:
        for attr, side in (("ge", "["), ("gt", "("), ("le", "]"), ("lt", ")")):
            value = getattr(m, attr, None)
            if value is not None:
                if side in "[(":
                    lo = f"{side}{value:g}"
                else:
                    hi = f"{value:g}{side}"
    if lo is None and hi is None:
        return ""
    return f"  {lo or '(-inf'}, {hi or 'inf)'}"


def plugin_registries() -> list[tuple[str, object]]:
    """(title, registry) of every plug-in kind, built-ins registered."""
    import channels  # noqa: F401
    from channels.base import CHANNELS
    from wirelessfl.compression import COMPRESSORS
    from wirelessfl.control import CONTROLLERS
    from wirelessfl.learning.aggregators import AGGREGATORS
    from wirelessfl.learning.data import DATASETS
    from wirelessfl.learning.models import MODELS
    from wirelessfl.loggers import LOGGERS
    from wirelessfl.network import tr38901  # noqa: F401
    from wirelessfl.network.pathloss import PATHLOSS
    from wirelessfl.selection import SELECTORS

    return [("fading models (channel.fading.model)", CHANNELS),
            ("path-loss models (channel.pathloss.model)", PATHLOSS),
            ("aggregators (method.aggregator)", AGGREGATORS),
            ("compressors (method.compressor)", COMPRESSORS),
            ("controllers (method.controller)", CONTROLLERS),
            ("client selectors (clients.selection)", SELECTORS),
            ("models (model.name)", MODELS),
            ("data sets (data.name)", DATASETS),
            ("experiment loggers (output.loggers)", LOGGERS)]


def cmd_channels(args: argparse.Namespace) -> int:
    for title, reg in plugin_registries()[:2]:
        print(title)
        print("\n".join(_plugin_lines(reg)))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    for title, reg in plugin_registries():
        print(title)
        print("\n".join(_plugin_lines(reg)))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from wirelessfl.api import example_scenarios
    from wirelessfl.errors import OutputError

    dest = Path(args.dir)
    files = example_scenarios()
    clash = [f.name for f in files if (dest / f.name).exists()]
    if clash and not args.force:
        raise OutputError("init", f"{dest / clash[0]} exists; pass --force to replace the "
                          "example scenarios")
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        (dest / f.name).write_text(f.read_text())
    print(f"{len(files)} example scenarios in {dest}; try: wirelessfl run {dest / 'smoke.yaml'}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wirelessfl")
    except PackageNotFoundError:
        return "unknown"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line with a hint, and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        print(shorten(f"error: {self.prog}: {message} (see '{self.prog} --help')", LINE_LIMIT),
              file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def make_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="log each round (-v) and every drop (-vv) to stderr")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar, only errors on stderr")
    parser = OneLineParser(
        prog="wirelessfl",
        description="Federated LoRA fine-tuning over simulated wireless edge networks.")
    parser.add_argument("--version", action="version", version=f"wirelessfl {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_parser = sub.add_parser

    def add(*a, **k):
        return _add_parser(*a, parents=[common], **k)

    sub.add_parser = add  # type: ignore[method-assign]

    p = sub.add_parser("run", help="run a scenario into its results folder")
    _add_scenario_args(p)
    p.add_argument("--out", help="results folder (default: the scenario's output.dir)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run's files in the results folder")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last complete round")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a scenario and print its sizes and latency")
    _add_scenario_args(p)
    p.add_argument("--offline", action="store_true",
                   help="also run TSFA's offline pilot (local training) and show the rank")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the scenario JSON Schema")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("plot", help="figures over runs or sweeps (seeds -> 95%% bands)")
    p.add_argument("runs", nargs="+", help="results folders or sweep folders")
    p.add_argument("--out", help="folder for the figures")
    p.add_argument("--round", type=int, help="round shown in the timeline (default: middle)")
    p.add_argument("--label", action="append", default=[], metavar="LABEL=TEXT",
                   help="rename a legend entry: a group's label or one of its key=value "
                        "parts, =, the text (repeatable), e.g. controller=tsfa=TSFA")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("summarize", help="table of runs or sweeps: mean +/- std over seeds")
    p.add_argument("runs", nargs="+", help="results folders or sweep folders")
    p.add_argument("--target", type=float, help="report the time to reach this accuracy")
    p.add_argument("--out", help="folder for summary.md and summary.csv")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("sweep", help="run the cartesian product of overrides")
    _add_scenario_args(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a key and its values (repeatable; the product is run)")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--out", help="sweep folder (default: results/sweeps/<name>)")
    p.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local worker processes (--jobs), or Ray tasks (needs the [ray] extra)")
    p.add_argument("--address", help="ray: address of a running cluster (default: start a "
                   "local Ray)")
    p.add_argument("--resources", help="ray: per run, e.g. CPU=2,GPU=0.5 (default: "
                   "compute.torch_threads or 1 CPU; 1 GPU with compute.device: cuda)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("channels", help="list channel and path-loss models with parameters")
    p.set_defaults(func=cmd_channels)

    p = sub.add_parser("plugins", help="list every plug-in (all kinds) with parameters")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("init", help="copy the example scenarios into a folder")
    p.add_argument("dir", help="folder to create")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return args.func(args) if args.debug else guarded(args.func, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``wirelessfl channels | head -1``): stop quietly; point
        # stdout at nothing so that the interpreter's final flush does not complain
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
