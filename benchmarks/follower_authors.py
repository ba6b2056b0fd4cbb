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
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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
from peer_venv import VenvUnavailable, ensure_venv  # noqa: E402

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
    ap.add_argument("--venv", type=Path, default=Path("/work/onnx/venv"), help="the onnx venv (made if missing)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if not args.onnx.is_file():
        raise SystemExit(f"--onnx: no file {args.onnx}")
    try:
        py = ensure_venv(args.venv, "import onnx, onnxruntime", [["onnx", "onnxruntime"]])
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
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([str(py), str(HERE / "onnx_worker.py")], input=json.dumps(
            {"onnx": str(args.onnx), "seconds": args.seconds, **files}), capture_output=True, text=True, env=env)
        if done.returncode:
            raise SystemExit(f"onnx worker failed ({done.returncode}):\n{done.stderr.strip()[-3000:]}")
        worker = json.loads(done.stdout)
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
    speed = {"ONNX Runtime, authors' weights, batch 1 per agent": worker["seconds_per_decision"],
             "torch, authors' weights, 256 agents per call": per_decision(authors_net, obs, args.seconds),
             "torch, our FollowerLite, 256 agents per call": per_decision(ours.net, obs, args.seconds)}

    def ci(x: np.ndarray) -> str:
        return f"{x.mean():.2f} ± {1.96 * x.std(ddof=1) / np.sqrt(len(x)):.2f}"

    base = scores["planner alone"]
    lines = ["# The authors' FollowerLite in equilibria", "",
             f"`python benchmarks/follower_authors.py --onnx .../follower-lite.onnx` (onnxruntime "
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
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "follower_authors.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(args.out / "follower_authors.json", json.dumps(
        {"logit_gap": gap, "throughput": {k: v.tolist() for k, v in scores.items()},
         "seconds_per_decision": speed, "graph": worker["nodes"], "versions": worker["versions"]}, indent=1).encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
