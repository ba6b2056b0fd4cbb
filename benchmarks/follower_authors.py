"""The authors' FollowerLite as an anchor: its weights (AIRI-Institute/learn-to-follow,
model/follower-lite/follower-lite.onnx, MIT) run in equilibria's lifelong MAPF through equilibria's
planner and observations, on the issue's held-out maps next to our FollowerLite and the planner;
and its network timed in ONNX Runtime, the way the authors' C++ FollowerLite calls it.

    python benchmarks/follower_authors.py --onnx PATH/follower-lite.onnx [--venv /work/onnx/venv]

Nothing is shipped or downloaded: pass the file from a checkout of the authors' repository. onnx
and onnxruntime live in their own venv (benchmarks/peer_venv.py, made on first use); there
benchmarks/onnx_worker.py reads the graph's weights (onnx.numpy_helper, no pickle) and runs it.

1. The graph, rebuilt in torch (`AuthorsLite`): a 3x3 convolution to 8 filters, one residual block,
   ReLU, and the actor and critic heads reading the 392 features directly (the authors'
   extra_fc_layers is 0, so their hidden_size 16 is unused). Their ResBlock's first ReLU is in place,
   so its skip connection adds relu(x), not x; the exported graph shows it and the rebuild does it.
   Its logits must equal ONNX Runtime's on the same observations (exit 1 otherwise).
2. Average throughput on random 32x32 maps, density 0.3, 64 agents, 256 lifelong steps, seeds 0-9
   (mapf-eval's 64-agent cells), moves sampled: the authors' weights, our shipped FollowerLite, and
   the planner alone.
3. The network alone at 256 agents, seconds per decision: ONNX Runtime once per agent (batch 1, as
   the authors' C++ does), and torch on the whole batch with the authors' weights and with ours.
4. With --planner-source (their follower_cpp folder): their A* planner (pybind11, compiled with
   g++ -O3) against ours on one recorded lifelong episode driven by our planner: both are given the
   same state every step (cells, targets, the agents each one sees). Their static penalties must be
   ours, their sub-goals ours on at least --min-agreement of the agent-steps, and every other one
   exactly as cheap as ours (a tie the two searches break differently), or the script exits 1.
   Also the planner calls' time per agent-step: theirs one agent at a time, as their Python
   Follower calls them; ours batched.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from peer_venv import VenvUnavailable, ensure_venv, run_worker  # noqa: E402

WORKER = HERE / "follower_authors_worker.py"

from equilibria import games, marl  # noqa: E402
from equilibria.scenarios.rundir import atomic_write_bytes  # noqa: E402

SHIPPED = HERE.parent / "scenarios" / "builtin" / "follower-lite"
EVAL_GAME = "lifelong_mapf(num_agents=64, size=32, density=0.3, max_steps=256)"  # mapf-eval's 64-agent game
NO_VENV = 3


class AuthorsLite(nn.Module):
    """The exported FollowerLite graph: conv -> r = relu; y = relu(r + conv(relu(conv(r)))); heads on y."""

    def __init__(self, weights: dict[str, np.ndarray]):
        super().__init__()
        prefix = "encoder.conv_head."
        names = [prefix + "0", prefix + "1.res_block_core.1", prefix + "1.res_block_core.3"]
        self.convs = nn.ModuleList()
        for name in names:
            w = torch.tensor(weights[name + ".weight"])
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data, conv.bias.data = w, torch.tensor(weights[name + ".bias"])
            self.convs.append(conv)
        self.actor = nn.Linear(*weights["action_parameterization.distribution_linear.weight"].shape[::-1])
        self.actor.weight.data = torch.tensor(weights["action_parameterization.distribution_linear.weight"])
        self.actor.bias.data = torch.tensor(weights["action_parameterization.distribution_linear.bias"])
        self.critic = nn.Linear(*weights["critic_linear.weight"].shape[::-1])
        self.critic.weight.data = torch.tensor(weights["critic_linear.weight"])
        self.critic.bias.data = torch.tensor(weights["critic_linear.bias"])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.relu(self.convs[0](x))
        y = torch.relu(r + self.convs[2](torch.relu(self.convs[1](r)))).flatten(1)
        return self.actor(y), self.critic(y).squeeze(-1)


def observations(agents: int = 256, side: int = 64, steps: int = 5) -> np.ndarray:
    """[agents, 2, 7, 7]: the follower's inputs after a few planner steps on a random map."""
    from equilibria.marl.mapf.follower import follower_observations
    from equilibria.marl.mapf.planner import BatchPlanner

    sim = games.load(f"lifelong_mapf(num_agents={agents}, size={side}, density=0.3, max_steps=256)").simulator(1, 0)
    planner = BatchPlanner(sim)
    for _ in range(steps):
        sim.step({"agents": planner.actions(planner.plan())}, autoreset=False)
    planner.plan()
    return follower_observations(sim, planner, 3)[0]


def planner_trace(agents: int, side: int, steps: int, seed: int = 0) -> tuple[dict[str, np.ndarray], float]:
    """One lifelong episode driven by our planner: every step's padded cells, targets and agent
    windows (the agents within the obs radius, the agent itself left out), our sub-goals; and our
    planner's seconds per agent-step (compiled before the clock)."""
    from equilibria.marl.mapf.planner import BatchPlanner

    game = games.load(f"lifelong_mapf(num_agents={agents}, size={side}, density=0.3, max_steps={steps})")
    warm = game.simulator(1, seed + 1)
    BatchPlanner(warm).plan()
    sim = game.simulator(1, seed)
    planner, r, w = BatchPlanner(sim), game.obs_radius, sim.padded_width
    grid = sim.grid[0].reshape(sim.padded_height, w)
    keys = ("pos", "target", "windows", "ours")
    out: dict[str, list] = {k: [] for k in keys}
    seconds = 0.0
    for _ in range(steps):
        rc, trc = np.stack(divmod(sim.pos[0], w), -1), np.stack(divmod(sim.target[0], w), -1)
        occupied = np.zeros(grid.shape, dtype=np.uint8)
        occupied[rc[:, 0], rc[:, 1]] = 1
        windows = np.stack([occupied[x - r:x + r + 1, y - r:y + r + 1] for x, y in rc])
        windows[:, r, r] = 0
        t0 = time.perf_counter()
        subgoal = planner.plan()
        seconds += time.perf_counter() - t0
        for k, v in zip(keys, (rc, trc, windows, np.stack(divmod(subgoal[0], w), -1))):
            out[k].append(v)
        sim.step({"agents": planner.actions(subgoal)}, autoreset=False)
    trace = {k: np.stack(v) for k, v in out.items()}
    return {**trace, "grid": grid.astype(np.int8), "radius": np.array(r),
            "our_penalty": planner.penalty[0].reshape(grid.shape)}, seconds / (steps * agents)


def call_worker(py: Path, request: dict) -> dict:
    try:
        return run_worker(py, WORKER, request, "the authors' worker")
    except RuntimeError as err:
        raise SystemExit(str(err)) from None


def next_cell_costs(trace: dict[str, np.ndarray], penalty: np.ndarray, t: int, k: int,
                    cells: list[np.ndarray]) -> list[float]:
    """Agent k's cost at step t of going through each of `cells` to its target: entering it, then
    the cheapest path on, with the planners' costs (static penalty plus the agents seen on a cell
    since the current target)."""
    grid, r = trace["grid"], int(trace["radius"])
    seen = np.zeros(grid.shape)
    s = t
    while s >= 0 and (trace["target"][s, k] == trace["target"][t, k]).all():
        x, y = trace["pos"][s, k]
        seen[x - r:x + r + 1, y - r:y + r + 1] += trace["windows"][s, k]
        s -= 1
    cost = penalty + seen
    tx, ty = trace["target"][t, k]
    dist = np.full(grid.shape, np.inf)
    dist[tx, ty] = 0.0
    heap = [(0.0, int(tx), int(ty))]
    while heap:  # from the target outward, paying the cost of the cell one leaves (entered going forward)
        d, x, y = heapq.heappop(heap)
        if d > dist[x, y]:
            continue
        for nx, ny in ((x, y + 1), (x + 1, y), (x - 1, y), (x, y - 1)):
            if grid[nx, ny] == 0 and d + cost[x, y] < dist[nx, ny]:
                dist[nx, ny] = d + cost[x, y]
                heapq.heappush(heap, (dist[nx, ny], nx, ny))
    return [float(cost[x, y] + dist[x, y]) for x, y in cells]


def compare_planners(py: Path, source: Path, build: Path, cases: list[tuple[int, int]], steps: int) -> list[dict]:
    rows = []
    for agents, side in cases:
        trace, ours_seconds = planner_trace(agents, side, steps)
        with tempfile.TemporaryDirectory() as tmp:
            files = {k: str(Path(tmp) / f"{k}.{ext}") for k, ext in
                     (("trace", "npz"), ("subgoals", "npy"), ("penalties", "npy"))}
            np.savez(files["trace"], **trace)
            answer = call_worker(py, {"cmd": "planner", "source": str(source), "build": str(build), **files})
            theirs, penalty = np.load(files["subgoals"]), np.load(files["penalties"])
        grid, r = trace["grid"], int(trace["radius"])
        free = np.zeros(grid.shape, dtype=bool)  # the map's free cells, the frame left out
        free[r:-r, r:-r] = grid[r:-r, r:-r] == 0
        # a free cell walled in alone has no mean distance: nan in theirs (0 / 0), and no part in any path
        free &= np.isfinite(penalty)
        penalty_gap = float(np.abs(trace["our_penalty"][free] - penalty[free]).max())
        agree = (theirs == trace["ours"]).all(-1)
        ties = 0
        for t, k in np.argwhere(~agree):
            ours_cost, theirs_cost = next_cell_costs(trace, penalty, t, k, [trace["ours"][t, k], theirs[t, k]])
            ties += abs(ours_cost - theirs_cost) < 1e-4
        rows.append({"agents": agents, "side": side, "steps": steps, "agreement": float(agree.mean()),
                     "disagreements": int((~agree).sum()), "ties": int(ties), "penalty_gap": penalty_gap,
                     "theirs_seconds": answer["seconds_per_agent_step"], "ours_seconds": ours_seconds})
        print(f"planner, {agents} agents {side}x{side}: static penalties agree to {penalty_gap:.1e}; sub-goals agree "
              f"on {agree.mean():.4%} of {agree.size} agent-steps, and {ties} of the {(~agree).sum()} others are "
              f"equally cheap; {1e6 * answer['seconds_per_agent_step']:.1f} us (theirs) vs {1e6 * ours_seconds:.1f} us "
              "(ours) per agent-step", flush=True)
    return rows


def throughput(player, game, seeds: range) -> np.ndarray:
    """Average throughput (targets reached per step) on one map per seed."""
    kw = {"deterministic": False, "game": game} if hasattr(player, "net") else {}
    return np.array([player.evaluation_returns(1, seed=s, **kw)[0] * game.num_agents / game.max_steps for s in seeds])


def per_decision(net: nn.Module, obs: np.ndarray, seconds: float) -> float:
    x = torch.from_numpy(obs)
    calls, t0 = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - t0 < seconds:
            net(x)
            calls += len(obs)
    return (time.perf_counter() - t0) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, required=True, help="the authors' follower-lite.onnx")
    ap.add_argument("--planner-source", type=Path, help="the authors' follower_cpp folder (planner.cpp, planner.h)")
    ap.add_argument("--min-agreement", type=float, default=0.99, help="exit 1 when fewer sub-goals agree")
    ap.add_argument("--venv", type=Path, default=Path("/work/onnx/venv"), help="the anchor venv (made if missing)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if not args.onnx.is_file():
        raise SystemExit(f"--onnx: no file {args.onnx}")
    if not 2 <= args.seeds <= 1000:
        raise SystemExit(f"--seeds: 2 to 1000 maps (an interval needs two), got {args.seeds}")
    if not 0 < args.seconds <= 600:  # NaN fails this too
        raise SystemExit(f"--seconds: a timing budget in (0, 600], got {args.seconds}")
    if not 0 <= args.min_agreement <= 1:
        raise SystemExit(f"--min-agreement: a share in [0, 1], got {args.min_agreement}")
    if args.planner_source is not None and not (args.planner_source / "planner.cpp").is_file():
        raise SystemExit(f"--planner-source: no planner.cpp in {args.planner_source}")
    packages = ["onnx", "onnxruntime"] + (["pybind11"] if args.planner_source else [])
    try:
        py = ensure_venv(args.venv, f"import {', '.join(packages)}", [packages])
    except VenvUnavailable as err:
        print(f"cannot make the onnx venv: {err}", file=sys.stderr)
        raise SystemExit(NO_VENV) from None
    torch.set_num_threads(1)
    from equilibria.marl.mapf.controllers import PlannerOnly
    from equilibria.scenarios.learning import load_trained

    obs = observations()
    with tempfile.TemporaryDirectory() as tmp:
        files = {k: str(Path(tmp) / f"{k}.{ext}") for k, ext in (("weights", "npz"), ("obs", "npy"), ("logits", "npy"))}
        np.save(files["obs"], obs)
        worker = call_worker(py, {"cmd": "onnx", "onnx": str(args.onnx), "seconds": args.seconds, **files})
        weights = dict(np.load(files["weights"]))
        ort_logits = np.load(files["logits"])
    authors_net = AuthorsLite(weights).eval()
    with torch.no_grad():
        ours_logits = authors_net(torch.from_numpy(obs))[0].numpy()
    gap = float(np.abs(ours_logits - ort_logits).max())
    print(f"rebuilt graph against ONNX Runtime: max |logit difference| {gap:.2e} over {len(obs)} observations")
    if gap > 1e-4:
        raise SystemExit(1)

    game = games.load(EVAL_GAME)
    authors = marl.make("follower", game, seed=0)  # FollowerLite's planner and radius; the network replaced
    authors.net = authors_net
    ours = load_trained(SHIPPED)[2]
    seeds = range(args.seeds)
    scores = {"authors' FollowerLite weights": throughput(authors, game, seeds),
              "our FollowerLite (shipped)": throughput(ours, game, seeds),
              "planner alone": throughput(PlannerOnly(game), game, seeds)}
    planners = [] if args.planner_source is None else compare_planners(
        py, args.planner_source, args.venv.parent / "planner-build", [(64, 32), (256, 64)], 256)
    speed = {"ONNX Runtime, authors' weights, batch 1 per agent": worker["seconds_per_decision"],
             "torch, authors' weights, 256 agents per call": per_decision(authors_net, obs, args.seconds),
             "torch, our FollowerLite, 256 agents per call": per_decision(ours.net, obs, args.seconds)}

    def ci(x: np.ndarray) -> str:
        return f"{x.mean():.2f} ± {1.96 * x.std(ddof=1) / np.sqrt(len(x)):.2f}"

    base = scores["planner alone"]
    lines = ["# The authors' FollowerLite in equilibria", "",
             f"`python benchmarks/follower_authors.py --onnx .../follower-lite.onnx"
             f"{' --planner-source .../follower_cpp' if args.planner_source else ''}` (onnxruntime "
             f"{worker['versions']['onnxruntime']}); {os.cpu_count()} cores, one thread each.", "",
             f"The torch rebuild of the exported graph gives ONNX Runtime's logits to {gap:.1e} on {len(obs)} "
             "observations (256 agents, 64x64 map).", "",
             f"## Average throughput: `{EVAL_GAME}`, seeds 0-{args.seeds - 1}, moves sampled", "",
             "95% normal intervals across maps; the paired column is the difference from the planner on the same maps.",
             "", "| policy | throughput | minus planner (paired) | per map |", "|---|---|---|---|"]
    for name, x in scores.items():
        paired = "" if x is base else ci(x - base)
        lines.append(f"| {name} | {ci(x)} | {paired} | {', '.join(f'{v:.2f}' for v in x)} |")
    lines += ["", "## The network alone, 256 agents", "", "| inference | microseconds per decision |", "|---|---|"]
    lines += [f"| {k} | {1e6 * v:.1f} |" for k, v in speed.items()]
    if planners:
        lines += ["", "## The authors' A* planner against ours", "",
                  "One 256-step lifelong episode per row (random map, density 0.3), driven by our planner; every step "
                  "both planners get the same cells, targets and windows of agents. Time: the planner calls per "
                  "agent-step (theirs: C++ through pybind11, one agent at a time, as their Python Follower calls it; "
                  "ours: numba, all agents in one call).", "",
                  "| agents (map) | static penalties, max difference | sub-goals that agree | the others: equally cheap "
                  "| theirs, us per agent-step | ours, us per agent-step | ratio |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['agents']} ({r['side']}x{r['side']}) | {r['penalty_gap']:.1e} | {r['agreement']:.4%} | "
                  f"{r['ties']} of {r['disagreements']} | {1e6 * r['theirs_seconds']:.1f} | {1e6 * r['ours_seconds']:.1f} | "
                  f"{r['theirs_seconds'] / r['ours_seconds']:.1f}x |" for r in planners]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "follower_authors.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(args.out / "follower_authors.json", json.dumps(
        {"logit_gap": gap, "throughput": {k: v.tolist() for k, v in scores.items()},
         "seconds_per_decision": speed, "planners": planners, "graph": worker["nodes"], "versions": worker["versions"]},
        indent=1).encode())
    print("\n".join(lines))
    if any(r["agreement"] < args.min_agreement or r["ties"] < r["disagreements"] or r["penalty_gap"] > 1e-4
           for r in planners):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
