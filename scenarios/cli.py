"""The `equilibria` command line: a thin layer over games, solvers and scenarios.

Exit status: 0 done; 2 bad input (one line naming what and where; no traceback, no run
directory left behind); 1 a run that could not go on (a full disk, an unreachable server) or
whose results should not be trusted as they stand (too many fallbacks); 130 interrupted,
with the command that resumes the run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _fmt(x: float) -> str:
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def list_games(console: Console) -> None:
    from equilibria import games

    table = Table(title="registered games")
    for col in ("name", "players", "dynamics", "chance", "information", "utility", "utility range",
                "max length", "actions", "description"):
        table.add_column(col)
    for name in games.registered():
        entry = games.registry.entry(name)
        if name == "openspiel":  # an adapter, not a game: its GameInfo is the wrapped game's
            table.add_row(name, "any", "any", "any", "any", "any", "any", "any", "any",
                          f"{entry.description} ({_openspiel_count()} games)")
            continue
        try:
            info = games.load(entry.example).info
        except Exception as err:  # a game that fails to build is still listed, with the reason
            table.add_row(name, *["?"] * 8, f"(unavailable: {err})")
            continue
        actions = str(info.num_distinct_actions) if info.action_type == "discrete" else "text"
        chance = "sampled" if info.sampled_chance else ("yes" if info.chance else "no")
        table.add_row(name, str(info.num_players), info.dynamics, chance, info.information, info.utility,
                      f"[{_fmt(info.min_utility)}, {_fmt(info.max_utility)}]", str(info.max_game_length),
                      actions, entry.description)
    console.print(table)


def _openspiel_count() -> int:
    import pyspiel

    return len(pyspiel.registered_names())


def list_solvers(console: Console) -> None:
    from equilibria import solvers

    table = Table(title="registered solvers")
    for col in ("name", "applies to", "zero-sum only", "config (defaults)", "description"):
        table.add_column(col)
    for name in solvers.registered():
        e = solvers.entry(name)
        cfg = solvers.build_config(name)
        params = ", ".join(f"{k}={v!r}" for k, v in cfg)
        applies = {"tree": "finite extensive-form", "normal_form": "normal-form", "any": "normal or extensive",
                   "preference": "preference games"}[e.kind]
        table.add_row(name, applies, "yes" if e.requires_zero_sum else "no", params, e.description)
    console.print(table)


def list_learners(console: Console) -> None:
    from equilibria import marl
    from equilibria.common.config import describe

    table = Table(title="registered learners (kind: train, algorithm: NAME)", show_lines=True)
    for col in ("name", "description", "config fields (defaults): help"):
        table.add_column(col)
    for name in marl.registered():
        e = marl.entry(name)
        cfg = dict(marl.build_config(name))
        fields = [f"{f.name} = {cfg[f.name]!r}: {' '.join(f.help.split())}" for f in describe(e.config_cls)]
        table.add_row(name, e.description, "\n".join(fields))
    console.print(table)


def list_scenarios(console: Console) -> None:
    from equilibria import scenarios

    table = Table(title="built-in scenarios (equilibria run NAME)")
    for col in ("name", "kind", "game", "description"):
        table.add_column(col)
    for name in scenarios.builtins():
        try:
            s = scenarios.load(name)
            plays = s.game if s.game is not None else ", ".join(map(str, getattr(s.config, "games", [])))  # evaluate
            table.add_row(name, s.kind, str(plays), " ".join(s.description.split()))
        except scenarios.ConfigError as err:
            table.add_row(name, "?", "?", f"(invalid: {err})")
    console.print(table)


def list_kinds(console: Console) -> None:
    from equilibria.scenarios.registry import registered_kinds

    table = Table(title="scenario kinds")
    table.add_column("kind")
    table.add_column("description")
    for name, k in sorted(registered_kinds().items()):
        table.add_row(name, k.description)
    console.print(table)


def _summary(console: Console, result) -> None:
    table = Table(title=f"run {result.run_dir.name}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in result.metrics.items():
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    table.add_row("run directory", str(result.run_dir))
    for p in result.plots:
        table.add_row("plot", str(p))
    console.print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equilibria", description="Game-theoretic and multi-agent learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered games, solvers, learners, scenarios or kinds")
    p.add_argument("what", nargs="?", default="games", choices=["games", "solvers", "learners", "scenarios", "kinds"])
    p = sub.add_parser("validate", help="check a scenario file or built-in without running it")
    p.add_argument("scenario", help="a YAML file or a built-in scenario name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    p = sub.add_parser("run", help="run a scenario (or resume a run)")
    p.add_argument("scenario", nargs="?", help="a YAML file or a built-in scenario name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a field, e.g. --set solver.config.alpha=0.1 (repeatable)")
    p.add_argument("--out", type=Path, help="parent directory of the run directory (default: the scenario's output)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    p.add_argument("--fresh", action="store_true",
                   help="with --resume: start that run over (its checkpoints, metrics and results are removed)")
    p.add_argument("--quiet", action="store_true", help="plain progress lines instead of a progress bar")
    p.add_argument("--address", help="Ray cluster to join for backend: ray (default: start Ray on this machine)")
    p = sub.add_parser("eval", help="reload train runs' checkpoints and evaluate them")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=32)
    p = sub.add_parser("explain", help="a kind, game, solver or agent type: its fields, types, defaults and help")
    p.add_argument("name")
    p = sub.add_parser("replay", help="render a game record (JSON) as a transcript (Werewolf: night by night)")
    p.add_argument("file", type=Path)
    p.add_argument("--prompts", action="store_true", help="also show every prompt and raw model answer")
    p = sub.add_parser("bench", help="run a benchmark against the reference implementations")
    p.add_argument("what", choices=["solvers"])
    p.add_argument("--quick", action="store_true", help="a few minutes instead of a full run")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = _console()
    from equilibria import scenarios
    from equilibria.scenarios.rundir import Interrupted

    try:
        if args.command == "list":
            {"games": list_games, "solvers": list_solvers, "learners": list_learners, "scenarios": list_scenarios,
             "kinds": list_kinds}[args.what](console)
        elif args.command == "validate":
            scenario = scenarios.load(args.scenario, args.overrides)
            scenarios.validate(scenario)
            console.print(f"ok: {scenario.source.name} is a valid '{scenario.kind}' scenario ({scenario.name})")
        elif args.command == "run":
            if args.resume is not None:
                if args.scenario or args.overrides:
                    raise scenarios.ConfigError("--resume takes the run directory only (its config.yaml is used)")
                result = scenarios.run(None, resume=args.resume, quiet=args.quiet, console=console,
                                       address=args.address, fresh=args.fresh)
            else:
                if args.fresh:
                    raise scenarios.ConfigError("--fresh starts a run directory over: give it with --resume RUN_DIR")
                if not args.scenario:
                    raise scenarios.ConfigError("give a scenario file or built-in name (see: equilibria list scenarios)")
                scenario = scenarios.load(args.scenario, args.overrides)
                result = scenarios.run(scenario, out=args.out, quiet=args.quiet, console=console,
                                       address=args.address)
            _summary(console, result)
            if result.alarms:
                for alarm in result.alarms:
                    print(f"warning: {alarm}", file=sys.stderr)
                return EXIT_FAILED
        elif args.command == "eval":
            from equilibria.scenarios.learning import evaluate_run

            if args.episodes < 1:
                raise scenarios.ConfigError(f"--episodes must be >= 1, got {args.episodes}")
            if args.episodes > 100_000:
                raise scenarios.ConfigError(f"--episodes runs every episode at once; at most 100000, got {args.episodes}")
            from equilibria.scenarios.plots import interval_text

            for run_dir in args.run_dirs:
                if not (run_dir / "config.yaml").exists():
                    raise scenarios.ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
            for run_dir in args.run_dirs:
                r = evaluate_run(run_dir, args.episodes)
                estimate = interval_text(r["mean_return"], r["mean_return"] - r["ci95"], r["mean_return"] + r["ci95"],
                                         r["episodes"], "{:.3f}", "episodes")
                console.print(f"{run_dir}: mean episode return {estimate} (95% CI, {r['episodes']} deterministic "
                              f"episodes, checkpoint at {r['env_steps']} steps)")
        elif args.command == "explain":
            from equilibria.scenarios.explain import explain

            for line in explain(args.name):
                console.print(line, highlight=False)
        elif args.command == "replay":
            from equilibria.games.replay import ReplayError, load_replay, render

            try:
                record = load_replay(args.file)
            except ReplayError as err:
                print(f"error: {err}", file=sys.stderr)
                return EXIT_BAD_INPUT
            for line in render(record, prompts=args.prompts):
                console.print(line, highlight=False)
        elif args.command == "bench":
            from equilibria.solvers.benchmark import run as bench

            console.print(bench(args.out, quick=args.quick, progress=lambda m: console.print(f".. {m}")))
    except scenarios.ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except scenarios.RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Interrupted as err:
        print(f"interrupted at iteration {err.iteration}; resume with: equilibria run --resume {err.run_dir}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
