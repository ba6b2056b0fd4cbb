"""BenchMARL benchmark: equilibria's MAPPO vs BenchMARL's MAPPO (TorchRL) on VMAS simple_spread matched
to MPE (agent force 5, 5 actions, 25 steps ending in truncation), same batch and PPO constants, 2 CPU
threads each. Each run is scored on its own task as the share of the gap from a random policy to a
scripted controller that it closes. Also raw environment stepping against VMAS, and equilibria's
agent scaling.

    python benchmarks/benchmarl.py [--frames 1000000] [--seconds 900] [--venv /work/benchmarl/venv]

BenchMARL and VMAS live in their own venv (made on first use: torch 2.13.0 CPU first, then
benchmarl 1.5.2, vmas 1.5.2, torchrl < 0.12) and run there as a subprocess of this same file
(`--worker`); nothing is installed into equilibria's venv.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# This file is named like the package it benchmarks: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

NUM_ENVS, HORIZON, N_AGENTS = 32, 25, 3
PPO = {"frames_per_batch": NUM_ENVS * HORIZON, "epochs": 10, "lr": 7e-4, "gamma": 0.99, "gae_lambda": 0.95,
       "clip": 0.2, "entropy": 0.01, "max_grad_norm": 10.0}  # MAPPO's MPE constants, both sides
EVAL_EPISODES, EVAL_SEED = 64, 10_000
PAUSE = "@@pause"  # the worker's line at each evaluation: the driver runs our side up to there, then answers
LOOKAHEAD, DEADBAND = 0.2, 0.05  # scripted controller: steer toward target - LOOKAHEAD * velocity
Controller = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (pos, vel, landmarks rel) -> actions


# ---- equilibria adapter: the only code that knows equilibria's API (update here when it changes) ----
def equilibria_game(num_agents: int = N_AGENTS) -> Any:
    from equilibria import games

    return games.load(f"cooperative_navigation(num_agents={num_agents}, num_landmarks={num_agents})")


def equilibria_learner(seed: int) -> Any:
    from equilibria import marl

    return marl.make("mappo", equilibria_game(), seed=seed, num_envs=NUM_ENVS)  # defaults = the PPO constants


def equilibria_step(learner: Any) -> tuple[int, float, float]:
    """One PPO iteration; returns (env steps so far, collection seconds, update seconds)."""
    t0 = time.perf_counter()
    batch = learner.collect()
    t1 = time.perf_counter()
    learner.update(batch)
    return learner.env_steps, t1 - t0, time.perf_counter() - t1


def equilibria_eval(learner: Any) -> tuple[float, float]:
    """Deterministic policy: mean return per agent over EVAL_EPISODES and its 95% CI half-width."""
    return learner.evaluate(EVAL_EPISODES, seed=EVAL_SEED, deterministic=True)


def equilibria_eval_controller(controller: Controller) -> tuple[float, float]:
    from equilibria.marl.runtime import evaluate_episodes

    def choose(obs: dict, mask: dict, active: dict) -> dict:  # obs: vel, pos, landmarks rel, ...
        o = obs["agents"]
        e, n, _ = o.shape
        return {"agents": controller(o[..., 2:4], o[..., 0:2], o[..., 4:4 + 2 * N_AGENTS].reshape(e, n, N_AGENTS, 2))}

    return evaluate_episodes(equilibria_game(), choose, EVAL_EPISODES, EVAL_SEED)


def equilibria_stepper(num_envs: int, num_agents: int) -> Callable[[np.ndarray], Any]:
    """`step(actions [num_envs, num_agents])` of a fresh simulator (finished episodes auto-reset)."""
    sim = equilibria_game(num_agents).simulator(num_envs, seed=0)
    return lambda actions: sim.step({"agents": actions})


def equilibria_version() -> str:
    import equilibria

    return f"{equilibria.__version__} from {Path(equilibria.__file__).parent.parent}"


# ---- shared by both sides ------------------------------------------------------------------------------
def mean_ci(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))


def random_controller(seed: int) -> Controller:
    rng = np.random.default_rng(seed)
    return lambda pos, vel, rel: rng.integers(0, 5, size=pos.shape[:2])


def scripted_controller(pos: np.ndarray, vel: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Greedy assignment (closest free agent-landmark pair first), then the axis move that most
    reduces (landmark - LOOKAHEAD * velocity). Actions in MPE order: no-op, left, right, down, up."""
    e, n, m = rel.shape[:3]
    dist, target, rows = np.linalg.norm(rel, axis=-1), np.zeros((e, n, 2)), np.arange(e)
    for _ in range(min(n, m)):
        agent, mark = np.divmod(dist.reshape(e, -1).argmin(1), m)
        target[rows, agent] = rel[rows, agent, mark]
        dist[rows, agent, :], dist[rows, :, mark] = np.inf, np.inf
    err = target - LOOKAHEAD * vel
    axis = np.abs(err).argmax(-1)
    positive = np.take_along_axis(err, axis[..., None], -1)[..., 0] > 0
    return np.where(np.abs(err).max(-1) < DEADBAND, 0, 1 + 2 * axis + positive)


def steps_per_second(step: Callable[[Any], Any], actions: list[Any], seconds: float) -> float:
    step(actions[0])  # warm-up
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step(actions[n % len(actions)])
        n += 1
    return n / (time.perf_counter() - t0)


class Run:
    """One learner's bookkeeping: collection vs learning time, evaluation schedule, learning curve."""

    def __init__(self, side: str, args: argparse.Namespace, gap: tuple[float, float]):
        self.side, self.frames, self.seconds, self.every, self.gap = side, args.frames, args.seconds, args.eval_every, gap
        self.collect_s = self.learn_s = self.setup_s = 0.0
        self.curve: list[tuple[int, float, float, float]] = []  # (frames, train seconds, return, score)
        self.final_ci, self.load = float("nan"), []  # 1-minute load average at each evaluation

    def spent(self) -> float:
        return self.collect_s + self.learn_s

    def finished(self, frames: int) -> bool:
        return frames >= self.frames or self.spent() >= self.seconds

    def eval_due(self, frames: int) -> bool:
        return frames >= (self.curve[-1][0] if self.curve else 0) + self.every or self.finished(frames)

    def record(self, frames: int, ret_ci: tuple[float, float]) -> None:
        ret, self.final_ci = ret_ci
        score = (ret - self.gap[0]) / (self.gap[1] - self.gap[0])
        self.curve.append((frames, self.spent(), ret, score))
        self.load.append(os.getloadavg()[0])
        print(f"[{self.side}] {frames:>9,} frames {self.spent():7.1f} s  return {ret:8.2f}  score {score:5.2f}",
              file=sys.stderr)

    def result(self) -> dict[str, Any]:
        return {"setup_s": self.setup_s, "frames": self.curve[-1][0], "collect_s": self.collect_s, "learn_s": self.learn_s,
                "curve": self.curve, "final_ci": self.final_ci, "load": float(np.mean(self.load))}


# ---- BenchMARL / VMAS side: defined only where BenchMARL is installed (the benchmark venv) ----------------
if importlib.util.find_spec("benchmarl") is not None:
    import torch
    from benchmarl.environments.vmas.common import VmasClass
    from benchmarl.experiment import Callback
    from torchrl.envs import StepCounter, Transform
    from torchrl.envs.libs.vmas import VmasEnv
    from torchrl.envs.utils import ExplorationType, set_exploration_type, step_mdp
    from vmas.scenarios.mpe.simple_spread import Scenario as SimpleSpread
    from vmas.simulator.core import Agent, Landmark, Sphere, World
    from vmas.simulator.dynamics.common import Dynamics
    from vmas.simulator.environment.environment import Environment

    # VMAS turns discrete value k of an n-valued axis into u in [-1, 1] with 0 first (n = 5: k = 0, 1, 2, 3, 4
    # -> u = 0, -1, -0.5, 0.5, 1), then multiplies u by u_multiplier. MOVES is indexed by round(2 u) + 2.
    MOVES = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, -1.0], [0.0, 1.0]])

    class FiveMoves(Dynamics):
        """One 5-valued action -> MPE's moves (no-op, left, right, down, up) times u_multiplier."""

        @property
        def needed_action_size(self) -> int:
            return 1

        def process_action(self) -> None:
            mult = self.agent.action.u_multiplier_tensor[0]
            self.agent.state.force = MOVES[torch.round(self.agent.action.u[:, 0] * 2 / mult).long() + 2] * mult

    class MatchedSpread(SimpleSpread):
        """VMAS simple_spread with MPE's discrete control: force 5 (MPE's sensitivity) and 5 actions."""

        def make_world(self, batch_dim: int, device: torch.device, **kwargs: Any) -> World:
            self.obs_agents = True
            world = World(batch_dim=batch_dim, device=device)
            for i in range(N_AGENTS):
                world.add_agent(Agent(name=f"agent_{i}", collide=True, shape=Sphere(radius=0.15), u_multiplier=5.0,
                                      discrete_action_nvec=[5], dynamics=FiveMoves()))
            for i in range(N_AGENTS):
                world.add_landmark(Landmark(name=f"landmark {i}", collide=False))
            return world

    def matched_env(num_envs: int, seed: int | None) -> VmasEnv:
        return VmasEnv(scenario=MatchedSpread(), num_envs=num_envs, continuous_actions=False, seed=seed,
                       device="cpu", categorical_actions=True, max_steps=None)

    class MatchedSpreadTask(VmasClass):
        """No VMAS horizon (which TorchRL marks terminated); StepCounter truncates at 25 steps instead."""

        def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any) -> Callable:
            return lambda: matched_env(num_envs, seed)

        def get_env_transforms(self, env: Any) -> list[Transform]:
            return [StepCounter(max_steps=HORIZON)]

    def vmas_evaluate(env: VmasEnv, act: Callable[[Any], torch.Tensor]) -> tuple[float, float]:
        """EVAL_EPISODES fixed-seed episodes at once; VMAS's RNG (shared by all its envs) is put back."""
        saved = list(Environment.vmas_random_state)
        env.set_seed(EVAL_SEED)
        td, total = env.reset(), torch.zeros(env.batch_size[0])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(HORIZON):
                td = env.step(td.set(("agents", "action"), act(td)))
                total += td["next", "agents", "reward"].mean(dim=(-2, -1))  # mean over agents
                td = step_mdp(td)
        Environment.vmas_random_state[:] = saved
        return mean_ci(total.numpy())

    def controller_act(controller: Controller) -> Callable[[Any], torch.Tensor]:
        def act(td: Any) -> torch.Tensor:  # VMAS observation: pos, vel, landmarks rel, others rel
            obs = td["agents", "observation"].numpy()
            rel = obs[..., 4:4 + 2 * N_AGENTS].reshape(*obs.shape[:2], N_AGENTS, 2)
            return torch.as_tensor(controller(obs[..., 0:2], obs[..., 2:4], rel))
        return act

    class StopTraining(Exception):
        pass

    class Probe(Callback):
        """Splits each iteration into collection and learning; evaluates, and hands the machine to the
        driver (equilibria's side) until it has trained as far, off the clock."""

        def __init__(self, run: Run):
            super().__init__()
            self.run, self.t, self.eval_env = run, 0.0, None

        def on_batch_collected(self, batch: Any) -> None:
            now = time.perf_counter()
            self.run.collect_s, self.t = self.run.collect_s + now - self.t, now

        def on_train_end(self, training_td: Any, group: str) -> None:
            self.run.learn_s += time.perf_counter() - self.t
            frames, policy = self.experiment.total_frames, self.experiment.policy
            if self.run.eval_due(frames):
                self.eval_env = self.eval_env or matched_env(EVAL_EPISODES, EVAL_SEED)
                self.run.record(frames, vmas_evaluate(self.eval_env, lambda td: policy(td)["agents", "action"]))
            if self.run.finished(frames):
                if frames < self.run.frames:
                    raise StopTraining
            elif self.run.curve and self.run.curve[-1][0] == frames:
                print(PAUSE, flush=True)
                sys.stdin.readline()
            self.t = time.perf_counter()

    def vmas_stepper(scenario: Any, num_envs: int) -> tuple[Callable[[Any], Any], list[Any]]:
        import vmas

        env = vmas.make_env(scenario, num_envs=num_envs, device="cpu", continuous_actions=False, max_steps=HORIZON)
        env.reset()
        gen = torch.Generator().manual_seed(0)
        actions = [[torch.randint(0, int(np.prod(a.discrete_action_nvec)), (num_envs, 1), generator=gen)
                    for a in env.agents] for _ in range(64)]

        def step(acts: list[torch.Tensor]) -> None:
            if env.step(acts)[2].any():  # all envs are at the same step, so they end together
                env.reset()
        return step, actions


def worker(args: argparse.Namespace) -> None:
    """The BenchMARL side (run in the benchmark venv); writes its results as JSON to args.worker."""
    from importlib.metadata import version

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    torch.set_num_threads(args.threads)
    eval_env = matched_env(EVAL_EPISODES, EVAL_SEED)
    baselines = [vmas_evaluate(eval_env, controller_act(c)) for c in (random_controller(EVAL_SEED), scripted_controller)]
    experiment_settings = {
        "gamma": PPO["gamma"], "lr": PPO["lr"], "adam_eps": 1e-5, "clip_grad_norm": True,
        "clip_grad_val": PPO["max_grad_norm"], "on_policy_collected_frames_per_batch": PPO["frames_per_batch"],
        "on_policy_n_envs_per_worker": NUM_ENVS, "on_policy_n_minibatch_iters": PPO["epochs"],
        "on_policy_minibatch_size": PPO["frames_per_batch"], "share_policy_params": True,
        "prefer_continuous_actions": False, "max_n_frames": args.frames}
    mappo_settings = {"share_param_critic": True, "clip_epsilon": PPO["clip"], "entropy_coef": PPO["entropy"],
                      "critic_coef": 1.0, "loss_critic_type": "l2", "lmbda": PPO["gae_lambda"],
                      "minibatch_advantage": False}
    cfg, algo = ExperimentConfig.get_from_yaml(), MappoConfig.get_from_yaml()
    for k, v in {**experiment_settings, "sampling_device": "cpu", "train_device": "cpu", "buffer_device": "cpu",
                 "evaluation": False, "render": False, "loggers": [], "create_json": False, "checkpoint_interval": 0,
                 "checkpoint_at_end": False, "save_folder": str(args.scratch)}.items():
        setattr(cfg, k, v)
    for k, v in mappo_settings.items():
        setattr(algo, k, v)
    model = MlpConfig(num_cells=[64, 64], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    run = Run("BenchMARL", args, (baselines[0][0], baselines[1][0]))
    probe, t0 = Probe(run), time.perf_counter()
    experiment = Experiment(task=MatchedSpreadTask("simple_spread_matched", {"max_steps": HORIZON}),
                            algorithm_config=algo, model_config=model, seed=0, config=cfg, callbacks=[probe])
    run.setup_s, probe.t = time.perf_counter() - t0, time.perf_counter()
    try:
        experiment.run()
    except StopTraining:
        pass
    stepping = {name: {e: steps_per_second(*vmas_stepper(scenario, e), args.env_seconds) * e for e in (1, 64, 1024)}
                for name, scenario in (("stock", "simple_spread"), ("matched", MatchedSpread()))}
    args.worker.write_text(json.dumps({
        **run.result(), "baselines": baselines, "stepping": stepping,
        "settings": {"ExperimentConfig": experiment_settings, "MappoConfig": mappo_settings, "MlpConfig": "[64, 64] Tanh"},
        "versions": {p: version(p) for p in ("benchmarl", "vmas", "torchrl", "tensordict", "torch")}}))


# ---- driver (equilibria's venv) ------------------------------------------------------------------------
def ensure_venv(venv: Path) -> Path:
    """The benchmark venv: torch 2.13.0 (CPU wheel) first, then BenchMARL and VMAS with torch held there."""
    py = venv / "bin" / "python"
    check = "import importlib.metadata as m; assert m.version('benchmarl') == m.version('vmas') == '1.5.2'"
    if py.exists() and subprocess.run([str(py), "-c", check], capture_output=True).returncode == 0:
        return py
    subprocess.run([shutil.which("python3.11") or sys.executable, "-m", "venv", str(venv)], check=True)
    (venv / "constraints.txt").write_text("torch==2.13.0\ntorchvision==0.28.0\n")  # torchvision 0.28 <-> torch 2.13
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "-c", str(venv / "constraints.txt"), "benchmarl==1.5.2", "vmas==1.5.2", "torchrl<0.12",
                    "torchvision==0.28.0"], check=True)
    return py


def train_equilibria(run: Run, threads: int) -> Iterator[None]:
    """Trains in chunks: pauses (yields) after each evaluation."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    learner, frames = equilibria_learner(seed=0), 0
    run.setup_s = time.perf_counter() - t0
    while not run.finished(frames):
        frames, collect_s, learn_s = equilibria_step(learner)
        run.collect_s, run.learn_s = run.collect_s + collect_s, run.learn_s + learn_s
        if run.eval_due(frames):
            run.record(frames, equilibria_eval(learner))
            yield


def report(ours: dict, theirs: dict, stepping: dict, scaling: dict, args: argparse.Namespace, wall: float) -> str:
    v, rows = theirs["versions"], []
    for name, r in (("equilibria MAPPO", ours), ("BenchMARL MAPPO", theirs)):
        train_s = r["collect_s"] + r["learn_s"]
        r["fps"], r["collect_fps"], r["learn_fps"] = r["frames"] / train_s, r["frames"] / r["collect_s"], \
            r["frames"] / r["learn_s"]
        r["hits"] = [next((c for c in r["curve"] if c[3] >= t), None) for t in args.thresholds]
        hits = " | ".join(f"{h[1]:.0f} s ({h[0]:,} frames)" if h else "not reached" for h in r["hits"])
        final = r["curve"][-1]
        rows.append(f"| {name} | {r['setup_s']:.1f} | {r['frames']:,} | {train_s:.0f} | {r['fps']:,.0f} | "
                    f"{r['collect_s']:.0f} | {r['learn_s']:.0f} | {hits} | {final[2]:.2f} ± {r['final_ci']:.2f} | "
                    f"{final[3]:.2f} | {r['load']:.1f} |")
    to_hit = ", ".join(f"{b[1] / a[1]:.1f}x to score {t}" if a and b else f"n/a to score {t}"
                       for t, a, b in zip(args.thresholds, ours["hits"], theirs["hits"]))
    (er, es), (vr, vs) = ours["baselines"], theirs["baselines"]
    lines = [
        f"# equilibria MAPPO vs BenchMARL MAPPO, matched simple_spread, {args.frames:,} frames each", "",
        f"equilibria {equilibria_version()}; BenchMARL {v['benchmarl']}, VMAS {v['vmas']}, TorchRL {v['torchrl']}, "
        f"tensordict {v['tensordict']}, torch {v['torch']}. {args.threads} torch thread(s) per side (OMP_WAIT_POLICY="
        f"{os.environ['OMP_WAIT_POLICY']}) on a {os.cpu_count()}-core machine; whole run "
        f"{wall / 60:.1f} min.", "",
        f"Both: {NUM_ENVS} envs, {PPO['frames_per_batch']} frames per batch, {PPO['epochs']} epochs of one minibatch, "
        f"lr {PPO['lr']}, gamma {PPO['gamma']}, GAE lambda {PPO['gae_lambda']}, clip {PPO['clip']}, entropy "
        f"{PPO['entropy']}, grad norm {PPO['max_grad_norm']}, 64-64 tanh actor and centralised critic, shared "
        f"parameters. BenchMARL settings: `{json.dumps(theirs['settings'])}`.", "",
        f"Score = (return - random) / (scripted - random), each on its own task; deterministic policy over "
        f"{EVAL_EPISODES} fixed-seed episodes. Baselines (mean return per agent, 95% CI): equilibria random "
        f"{er[0]:.2f} ± {er[1]:.2f}, scripted {es[0]:.2f} ± {es[1]:.2f}; VMAS matched random {vr[0]:.2f} ± "
        f"{vr[1]:.2f}, scripted {vs[0]:.2f} ± {vs[1]:.2f} (VMAS's shared reward is 6x MPE's per-agent mean).", "",
        "## Training", "",
        "| learner | start-up s | frames | train s | frames/s | collection s | learning s | "
        + "".join(f"train s to score {t} | " for t in args.thresholds) + "final return (95% CI) | final score | "
        "mean load avg |", "|---" * (10 + len(args.thresholds)) + "|",
        *rows, "",
        f"Ours / BenchMARL: frames/s {ours['fps'] / theirs['fps']:.2f}x (collection "
        f"{ours['collect_fps'] / theirs['collect_fps']:.1f}x, learning step {ours['learn_fps'] / theirs['learn_fps']:.1f}x); "
        f"BenchMARL's wall time / ours: {to_hit}.", "",
        "| frames | equilibria train s | equilibria score | BenchMARL train s | BenchMARL score |", "|---|---|---|---|---|"]
    theirs_at = {c[0]: c for c in theirs["curve"]}
    for c in ours["curve"]:
        t = theirs_at.get(c[0], [0, float("nan"), 0, float("nan")])
        lines.append(f"| {c[0]:,} | {c[1]:.0f} | {c[3]:.2f} | {t[1]:.0f} | {t[3]:.2f} |")
    lines += ["", "## Raw environment stepping (random actions, env steps/s)", "",
              "| envs | equilibria cooperative_navigation | VMAS simple_spread | VMAS matched | ours / VMAS |",
              "|---|---|---|---|---|"]
    for e, sps in stepping.items():
        stock, matched = theirs["stepping"]["stock"][str(e)], theirs["stepping"]["matched"][str(e)]
        lines.append(f"| {e:,} | {sps:,.0f} | {stock:,.0f} | {matched:,.0f} | {sps / stock:.1f}x |")
    lines += ["", "## Agent scaling (equilibria only: one environment, as many landmarks as agents; every agent observes every other agent and landmark, so a step's work grows as N^2 -- the linear-scaling check is grid_goals in benchmarks/results/marl.md)", "",
              "| agents | env steps/s | agent-steps/s |", "|---|---|---|",
              *(f"| {n:,} | {sps:,.1f} | {sps * n:,.0f} |" for n, sps in scaling.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="training frames (env steps) per learner")
    parser.add_argument("--seconds", type=float, default=900.0, help="cap on each learner's training time")
    parser.add_argument("--eval-every", type=int, default=40_000, help="frames between evaluations")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.25, 0.5], help="scores to time")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per side")
    parser.add_argument("--env-seconds", type=float, default=3.0, help="seconds per raw stepping measurement")
    parser.add_argument("--venv", type=Path, default=Path("/work/benchmarl/venv"), help="benchmark venv")
    parser.add_argument("--scratch", type=Path, default=Path("/work/benchmarl/runs"), help="BenchMARL's run folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "benchmarl.md")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    # Idle OpenMP threads sleep instead of spinning (before torch loads): on a busy 2-core machine spinning
    # threads starve the working ones and 2-thread torch runs ~50x slower. Passed on to the worker too.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.worker:
        return worker(args)
    wall, result = time.perf_counter(), args.scratch / "benchmarl.json"
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": str(args.threads),
           "TQDM_DISABLE": "1"}
    baselines = [equilibria_eval_controller(c) for c in (random_controller(EVAL_SEED), scripted_controller)]
    run = Run("equilibria", args, (baselines[0][0], baselines[1][0]))
    chunks = train_equilibria(run, args.threads)  # alternates with BenchMARL's, so both meet the same background load
    cmd = [str(ensure_venv(args.venv)), __file__, "--worker", str(result), *sys.argv[1:]]
    with subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as worker_proc:
        for line in worker_proc.stdout:
            if line.strip() != PAUSE:
                print(line, end="", file=sys.stderr)
                continue
            next(chunks, None)
            worker_proc.stdin.write("go\n")
            worker_proc.stdin.flush()
    if worker_proc.returncode:
        raise SystemExit(f"BenchMARL worker failed ({worker_proc.returncode})")
    for _ in chunks:
        pass
    theirs, ours = json.loads(result.read_text()), {**run.result(), "baselines": baselines}
    rng = np.random.default_rng(0)
    stepping = {e: steps_per_second(equilibria_stepper(e, N_AGENTS), list(rng.integers(0, 5, (64, e, N_AGENTS))),
                                    args.env_seconds) * e for e in (1, 64, 1024)}
    scaling = {n: steps_per_second(equilibria_stepper(1, n), list(rng.integers(0, 5, (16, 1, n))), args.env_seconds)
               for n in (8, 64, 256, 1024)}
    (args.scratch / "results.json").write_text(json.dumps({"ours": ours, "theirs": theirs, "stepping": stepping,
                                                           "scaling": scaling}))
    text = report(ours, theirs, stepping, scaling, args, time.perf_counter() - wall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
