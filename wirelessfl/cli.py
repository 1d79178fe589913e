"""The ``wirelessfl`` command line: run, validate, schema, plot, channels.

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
    info = build_simulation(sc).plan_summary()
    print(f"{args.scenario}: valid")
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


def cmd_plot(args: argparse.Namespace) -> int:
    from wirelessfl.errors import WirelessFLError as Err
    from wirelessfl.plotting import plot_runs

    runs = [Path(r) for r in args.runs]
    for r in runs:
        if not (r / "metrics.csv").is_file():
            raise Err("plot", f"{str(r)!r} is not a results folder (no metrics.csv)")
    out = Path(args.out) if args.out else (runs[0] / "plots" if len(runs) == 1
                                            else Path("results") / "plots")
    for p in plot_runs(runs, out):
        print(p)
    return 0


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
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the scenario JSON Schema")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("plot", help="overlay runs: accuracy vs simulated time and uplink bits")
    p.add_argument("runs", nargs="+", help="results folders")
    p.add_argument("--out", help="folder for the figures")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("channels", help="list channel and path-loss models with parameters")
    p.set_defaults(func=cmd_channels)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except WirelessFLError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
