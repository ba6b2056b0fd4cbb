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

from equilibria.scenarios.learning import CHECKPOINTS

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
        applies = {"tree": "finite extensive-form (compiled tree)",
                   "sampled": "finite extensive-form (sampled, any size)", "normal_form": "normal-form", "any": "normal or extensive",
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


def list_controllers(console: Console) -> None:
    import inspect

    from equilibria.marl import controllers

    table = Table(title="registered controllers (kind: evaluate, policies: [{name, controller: NAME, config}])",
                  show_lines=True)
    for col in ("name", "description", "parameters (defaults)"):
        table.add_column(col)
    for name in controllers.registered():
        e = controllers.entry(name)
        params = [f"{p.name} = {p.default!r}" for p in inspect.signature(e.factory).parameters.values()
                  if p.name != "game"]
        table.add_row(name, e.description, "\n".join(params) or "none")
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


def record_demonstrations(args: argparse.Namespace, console: Console) -> int:
    """`equilibria record`: every check before anything is played; the dataset appears whole or not at all."""
    from equilibria import games
    from equilibria.common.config import ConfigError, suggest
    from equilibria.common.limits import INT64_MAX
    from equilibria.games.core import ScriptedPolicy
    from equilibria.games.demonstrations import check_target, record, require_pyarrow
    from equilibria.games.experts import expert_policy, experts
    from equilibria.games.markov import MarkovGame
    from equilibria.scenarios.rundir import progress

    require_pyarrow("record")
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if not 0 <= args.seed <= INT64_MAX - args.episodes + 1:
        raise ConfigError(f"--seed must lie in [0, {INT64_MAX - args.episodes + 1}] (episode seeds are int64), got {args.seed}")
    check_target(args.out)
    source = args.run_or_policy
    if Path(source).is_dir():
        from equilibria.scenarios.learning import load_trained

        scenario, game, learner = load_trained(Path(source), args.checkpoint)
        if args.game is not None:
            trained, game = game, games.load(args.game)
            if getattr(game, "groups", None) != trained.groups:
                raise ConfigError(f"--game {args.game}: its agent groups differ from those of {trained!r}, "
                                  f"which {source} was trained on")
        policy = learner.policy(deterministic=args.deterministic)
        name = f"{scenario.config.algorithm.name} run {source}{' (deterministic)' if args.deterministic else ''}"
    elif source in ScriptedPolicy.KINDS:
        if args.game is None:
            raise ConfigError(f"record {source}: give the game with --game SPEC")
        if args.deterministic:
            raise ConfigError("--deterministic applies to a train run's policy, not to a scripted one")
        game, policy, name = games.load(args.game), ScriptedPolicy(source), f"scripted {source}"
    elif source in experts():  # a game's scripted expert (games.experts), refused for another game
        if args.game is None:
            raise ConfigError(f"record {source}: give the game with --game SPEC")
        if args.deterministic:
            raise ConfigError("--deterministic applies to a train run's policy, not to a scripted expert")
        game = games.load(args.game)
        policy, name = expert_policy(source, game), f"expert {source}"
    else:
        known = [*ScriptedPolicy.KINDS, *sorted(experts())]
        raise ConfigError(f"{source!r} is neither a train run directory nor a scripted policy "
                          f"({', '.join(known)}){suggest(source, known)}")
    if not isinstance(game, MarkovGame):
        raise ConfigError(f"record plays Markov games; {game!r} is not one")
    try:
        with progress(args.episodes, "record", console=console,
                      log=lambda m: console.print(m, highlight=False, markup=False)) as update:
            rec = record(game, policy, args.episodes, args.out, args.seed, policy_name=name, progress=update)
    except OSError as err:
        print(f"error: cannot write {args.out}: {err.strerror or err} (nothing was written)", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"interrupted; nothing was written to {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    console.print(f"recorded {rec.episodes} episodes, {rec.steps} steps, mean return per agent "
                  f"{rec.mean_return:.4g} ({name} on {game!r}) -> {rec.path}", highlight=False, markup=False)
    return 0


def replay_demonstrations(path: Path, console: Console) -> int:
    """`equilibria replay DATASET`: every recorded episode played again from its seed and actions;
    exit 1 when one does not reproduce its observations, rewards and returns."""
    import numpy as np

    from equilibria.common.config import ConfigError
    from equilibria.games.demonstrations import Demonstrations, replay

    demos = Demonstrations(path)
    game = demos.load_game()
    if getattr(game, "groups", None) != demos.groups:
        raise ConfigError(f"{path / 'meta.json'}: its groups differ from those of {game!r} as registered now")
    diverged = 0
    for i in range(len(demos)):
        ep = demos.episode(i)
        try:
            same = np.array_equal(replay(game, ep).returns(), ep["returns"])
            verdict = "replays identically" if same else "the returns differ"
        except ValueError as err:  # an illegal action or a divergence: the game is not what was recorded
            same, verdict = False, str(err)
        diverged += not same
        end = "terminated" if ep["terminated"] else "truncated"
        console.print(f"episode {i}: seed {ep['seed']}, {ep['length']} steps ({end}), returns "
                      f"{np.round(ep['returns'], 4).tolist()}: {verdict}", highlight=False, markup=False)
    if diverged:
        print(f"warning: {diverged} of {len(demos)} episodes do not replay as recorded", file=sys.stderr)
        return EXIT_FAILED
    return 0


def bench(what: str | None, script_args: list[str], console: Console, quick: bool = False,
          out: Path | None = None) -> int:
    from equilibria.scenarios.bench import BenchError, available, run_script

    if what not in (None, "solvers") and (quick or out is not None):
        print(f"error: bench {what}: its options go after its name (equilibria bench {what} --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if what is None:
        table = Table("benchmark", "what it measures", title="equilibria bench NAME [ARGS...]")
        for name, line in available().items():
            table.add_row(name, line)
        console.print(table)
        return 0
    if what != "solvers":
        try:
            return run_script(what, script_args)
        except BenchError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    parser = argparse.ArgumentParser(prog="equilibria bench solvers")
    parser.add_argument("--quick", action="store_true", default=quick, help="a few minutes instead of a full run")
    parser.add_argument("--out", type=Path, default=out or Path("benchmarks/results"))
    opts = parser.parse_args(script_args)
    from equilibria.solvers.benchmark import run

    console.print(run(opts.out, quick=opts.quick, progress=lambda m: console.print(f".. {m}")))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equilibria", description="Game-theoretic and multi-agent learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered games, solvers, learners, controllers, scenarios or kinds")
    p.add_argument("what", nargs="?", default="games",
                   choices=["games", "solvers", "learners", "controllers", "scenarios", "kinds"])
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
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="latest",
                   help="the latest checkpoint or the learner of the run's best evaluation")
    p = sub.add_parser("record", help="record episodes of a trained run or a scripted policy as demonstrations (Parquet)")
    p.add_argument("run_or_policy", metavar="RUN_OR_POLICY",
                   help="a train run directory, a scripted policy (random, first_action, last_action) or a "
                        "game's scripted expert (gems_planner, overcooked_planner)")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="the dataset directory to create")
    p.add_argument("--game", help="the game (required for a scripted policy; a run's own game by default)")
    p.add_argument("--seed", type=int, default=0, help="episode i plays on seed SEED + i")
    p.add_argument("--deterministic", action="store_true", help="a run's policy takes its most likely action")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="latest",
                   help="a run's latest checkpoint or the learner of its best evaluation")
    p = sub.add_parser("explain", help="a kind, game, solver or agent type: its fields, types, defaults and help")
    p.add_argument("name")
    p = sub.add_parser("replay", help="render a game record (JSON) as a transcript (Werewolf: night by night), or "
                                      "play a demonstrations directory's episodes again and check them")
    p.add_argument("file", type=Path, help="a replay JSON file or a demonstrations directory")
    p.add_argument("--prompts", action="store_true", help="also show every prompt and raw model answer")
    p = sub.add_parser("report", help="one self-contained HTML page of runs: summaries, interactive curves, tables, "
                                      "plots (several runs: a comparison)")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", type=Path, help="the HTML file (default: RUN_DIR/report.html, or ./report.html for several)")
    p.add_argument("--serve", action="store_true", help="serve one run's page and files on 127.0.0.1 (read-only)")
    p.add_argument("--port", type=int, default=8765)
    p = sub.add_parser("bench", help="run a benchmark against the reference implementations (no name: list them)",
                       description="equilibria bench solvers [--quick] [--out DIR]; equilibria bench NAME [ARGS...] "
                                   "runs benchmarks/NAME.py with ARGS (from a checkout); no NAME lists them.")
    p.add_argument("--quick", action="store_true", help="solvers: a few minutes instead of a full run")
    p.add_argument("--out", type=Path, help="solvers: the output directory (default benchmarks/results)")
    p.add_argument("what", nargs="?", help="the benchmark (see the list)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = _console()
    from equilibria import scenarios
    from equilibria.scenarios.rundir import Interrupted

    try:
        if args.command == "list":
            {"games": list_games, "solvers": list_solvers, "learners": list_learners, "controllers": list_controllers,
             "scenarios": list_scenarios, "kinds": list_kinds}[args.what](console)
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

            failed = 0
            for run_dir in args.run_dirs:  # a run that cannot be evaluated is said and skipped; the others still are
                try:
                    if not (run_dir / "config.yaml").exists():
                        raise scenarios.ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
                    r = evaluate_run(run_dir, args.episodes, args.checkpoint)
                except scenarios.ConfigError as err:
                    print(f"error: {err}", file=sys.stderr)
                    failed += 1
                    continue
                estimate = interval_text(r["mean_return"], r["mean_return"] - r["ci95"], r["mean_return"] + r["ci95"],
                                         r["episodes"], "{:.3f}", "episodes")
                how = "deterministic" if r["deterministic"] else "sampled"
                console.print(f"{run_dir}: mean episode return {estimate} (95% CI, {r['episodes']} {how} "
                              f"episodes, {args.checkpoint} checkpoint at {r['env_steps']} steps)")
            if failed:
                return EXIT_BAD_INPUT
        elif args.command == "report":
            from equilibria.scenarios.report import build_report, serve

            if args.serve:
                if len(args.run_dirs) != 1 or args.out:
                    raise scenarios.ConfigError("--serve takes one run directory and no --out")
                serve(args.run_dirs[0], args.port)
            else:
                console.print(f"wrote {build_report(args.run_dirs, args.out)}", highlight=False, markup=False)
        elif args.command == "record":
            return record_demonstrations(args, console)
        elif args.command == "explain":
            from equilibria.scenarios.explain import explain

            for line in explain(args.name):
                console.print(line, highlight=False)
        elif args.command == "replay":
            from equilibria.games.replay import ReplayError, load_replay, render

            if args.file.is_dir():
                return replay_demonstrations(args.file, console)
            try:
                record = load_replay(args.file)
            except ReplayError as err:
                print(f"error: {err}", file=sys.stderr)
                return EXIT_BAD_INPUT
            for line in render(record, prompts=args.prompts):
                console.print(line, highlight=False)
        elif args.command == "bench":
            return bench(args.what, args.script_args, console, args.quick, args.out)
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
