"""The authors' side of benchmarks/follower_authors.py: run by the anchor venv's python (onnx,
onnxruntime, pybind11), never by equilibria's, and imports nothing from equilibria. Reads one JSON
request on stdin and prints one JSON answer.

- {"cmd": "onnx", "onnx": model path, "weights": .npz to write, "obs": .npy of observations
  [B, 2, d, d], "logits": .npy to write, "seconds": timing budget}: writes the model's
  initializers (its weights, by name) to "weights" and ONNX Runtime's action logits for every
  observation to "logits"; answers the graph's inputs and nodes and the seconds per agent decision
  when ONNX Runtime is called once per agent (the graph's batch is 1, as the authors' C++
  FollowerLite calls it).
- {"cmd": "planner", "source": folder with planner.cpp and planner.h, "build": folder to build in,
  "trace": .npz, "subgoals": .npy to write}: compiles the authors' A* planner (their pybind11
  module, cppimport's build header removed) and drives one planner per agent as their Python
  Follower does (static penalties computed once and shared; every step, if the agent is not on its
  target, update_occupations with the agents in its window, itself excluded, then update_path; the
  sub-goal is the path's second cell, the target when there is no path). The trace holds the padded
  obstacle grid [H, W], the obs radius, and per step the agents' padded cells [T, N, 2], targets
  [T, N, 2] and agent windows [T, N, d, d]. Writes the sub-goals [T, N, 2] and the static
  penalties [H, W]; answers the seconds the planner calls took per agent-step.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np


def onnx_request(req: dict) -> dict:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(req["onnx"])
    np.savez(req["weights"], **{t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(req["onnx"], options, providers=["CPUExecutionProvider"])
    obs = np.load(req["obs"]).astype(np.float32)
    rnn = np.zeros((1, 1), dtype=np.float32)
    logits = np.stack([session.run(["action_logits"], {"obs": o[None], "rnn_state": rnn})[0][0] for o in obs])
    np.save(req["logits"], logits)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < req["seconds"]:
        for o in obs:
            session.run(["action_logits"], {"obs": o[None], "rnn_state": rnn})
        calls += len(obs)
    return {"inputs": {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input},
            "nodes": [n.op_type for n in model.graph.node], "seconds_per_decision": (time.perf_counter() - t0) / calls,
            "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__}}


def build_planner(source: Path, build: Path):
    """The authors' pybind11 planner module, compiled with g++ -O3 (as cppimport would)."""
    import pybind11

    text = re.sub(r"<%.*?%>", "", (source / "planner.cpp").read_text(), flags=re.S)  # cppimport's build header
    header = (source / "planner.h").read_text()
    build = build / hashlib.sha256((text + header).encode()).hexdigest()[:16]  # one build per source version
    build.mkdir(parents=True, exist_ok=True)
    (build / "planner.cpp").write_text(text)
    (build / "planner.h").write_text(header)
    target = build / ("planner" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not target.exists():
        done = subprocess.run(["g++", "-O3", "-shared", "-std=c++17", "-fPIC", f"-I{pybind11.get_include()}",
                               f"-I{sysconfig.get_paths()['include']}", str(build / "planner.cpp"), "-o", str(target)],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"g++ could not build {source / 'planner.cpp'}:\n{done.stderr[-3000:]}")
    spec = importlib.util.spec_from_file_location("planner", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.planner


def planner_request(req: dict) -> dict:
    planner = build_planner(Path(req["source"]), Path(req["build"]))
    trace = np.load(req["trace"])
    grid, r = trace["grid"].astype(int).tolist(), int(trace["radius"])
    pos, target, windows = trace["pos"], trace["target"], trace["windows"].astype(np.float64)
    steps, agents = pos.shape[:2]
    seconds = 0.0
    t0 = time.perf_counter()
    planners = [planner(grid, True, True, True) for _ in range(agents)]
    penalties = planner(grid, True, True, True).precompute_penalty_matrix(r)
    for p in planners:
        p.set_abs_start((0, 0))  # absolute (padded) coordinates throughout
        p.set_penalties(penalties)
    setup = time.perf_counter() - t0
    subgoals = np.zeros((steps, agents, 2), dtype=np.int64)
    for t in range(steps):
        t0 = time.perf_counter()
        paths = []
        for k, p in enumerate(planners):
            xy, goal = tuple(int(v) for v in pos[t, k]), tuple(int(v) for v in target[t, k])
            if xy != goal:
                p.update_occupations(windows[t, k], (xy[0] - r, xy[1] - r), goal)
                p.update_path(xy, goal)
            paths.append(p.get_path())
        seconds += time.perf_counter() - t0
        for k, path in enumerate(paths):
            subgoals[t, k] = path[1] if len(path) > 1 else target[t, k]
    np.save(req["subgoals"], subgoals)
    np.save(req["penalties"], np.asarray(penalties, dtype=np.float64))
    return {"seconds_per_agent_step": seconds / (steps * agents), "setup_seconds": setup}


def main() -> None:
    req = json.loads(sys.stdin.read())
    print(json.dumps({"onnx": onnx_request, "planner": planner_request}[req["cmd"]](req)))


if __name__ == "__main__":
    main()
