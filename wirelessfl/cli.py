"""The ``wirelessfl`` command line: run, validate, sweep, plot, summarize, schema, channels.

Every user mistake is a :class:`WirelessFLError`: the command prints one line
``error: <key.path>: <what is wrong and what is allowed>`` and exits with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wirelessfl.errors import WirelessFLError

EXIT_USER_ERROR = 2


def guarded(func, *args) -> int:
    """Call ``func(*args)`` as a command: a user mistake prints one line, status 2.

    For the scripts in ``scripts/``, which take the same overrides as the CLI.
    Returns ``func``'s integer result, or 0 when it returns None.
    """
    try:
        return int(func(*args) or 0)
    except WirelessFLError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set clients.count=20 (repeatable)")


def cmd_run(args: argparse.Namespace) -> int:
    from wirelessfl.runner import run_scenario
    from wirelessfl.scenario import load_scenario

    sc = load_scenario(args.scenario, args.overrides)
    out = Path(args.out) if args.out else None
    path, summary = run_scenario(sc, overwrite=args.overwrite, progress=not args.quiet,
                                 out_dir=out)
    print(f"{sc.name}: final accuracy {summary['final_accuracy']:.4f} after "
          f"{summary['sim_time_s']:.2f} simulated s ({summary['wall_time_s']:.1f} s wall); "
          f"results in {path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from wirelessfl.runner import build_simulation
    from wirelessfl.scenario import load_scenario

    sc = load_scenario(args.scenario, args.overrides)
    sim = build_simulation(sc, offline=args.offline)
    info = sim.plan_summary()
    if sc.method.controller_options.get("rank_candidates") and not args.offline:
        info["tsfa_offline_rank"] = "not chosen (--offline runs the pilot and shows it)"
    elif sim.offline_rows:
        info["tsfa_offline_rank"] = sim.sc.model.lora.rank
    print(f"{args.scenario}: valid")
    warning = sim.budget_warning()
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
    out = Path(args.out) if args.out else _default_out(paths, "plots")
    for p in plot_runs(paths, out, args.round):
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
    from wirelessfl.sweep import run_sweep

    out, rows = run_sweep(args.scenario, args.grid, args.overrides, args.jobs,
                          Path(args.out) if args.out else None, progress=not args.quiet)
    failed = [r for r in rows if r["status"] == "failed"]
    print(f"sweep: {len(rows)} runs, {len(failed)} failed; index {out / 'sweep.csv'}")
    return 1 if failed else 0


def cmd_channels(args: argparse.Namespace) -> int:
    import channels  # noqa: F401
    from channels.base import CHANNELS
    from wirelessfl.network import tr38901  # noqa: F401
    from wirelessfl.network.pathloss import PATHLOSS

    for title, reg in (("fading models (channel.fading.model)", CHANNELS),
                       ("path-loss models (channel.pathloss.model)", PATHLOSS)):
        print(title)
        for name in reg.names():
            cls = reg.get(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"  {name:<14} {doc}")
            for field, info in cls.Params.model_fields.items():
                desc = f"  {info.description}" if info.description else ""
                print(f"      {field} = {info.default!r}{desc}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wirelessfl",
        description="Federated LoRA fine-tuning over simulated wireless edge networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario into its results folder")
    _add_scenario_args(p)
    p.add_argument("--out", help="results folder (default: the scenario's output.dir)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run's files in the results folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("channels", help="list channel and path-loss models with parameters")
    p.set_defaults(func=cmd_channels)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args) if args.debug else guarded(args.func, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
