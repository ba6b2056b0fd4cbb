"""ONNX side of benchmarks/follower_authors.py: run by the anchor venv's python (onnx and
onnxruntime), never by equilibria's, and imports nothing from equilibria. Reads one JSON request on
stdin: {"onnx": model path, "weights": .npz to write, "obs": .npy of observations [B, 2, d, d],
"logits": .npy to write, "seconds": timing budget}. Writes the model's initializers (its weights,
by name) to "weights", ONNX Runtime's action logits for every observation to "logits", and prints
JSON: the graph's inputs and nodes, the seconds per agent decision when ONNX Runtime is called
once per agent (the graph's batch is 1, as the authors' C++ FollowerLite calls it), and versions.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def main() -> None:
    req = json.loads(sys.stdin.read())
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
    seconds = (time.perf_counter() - t0) / calls
    print(json.dumps({"inputs": {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input},
                      "nodes": [n.op_type for n in model.graph.node], "seconds_per_decision": seconds,
                      "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__}}))


if __name__ == "__main__":
    main()
