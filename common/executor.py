"""Where a kind's independent jobs run: in this process (`backend: local`) or as Ray tasks
(`backend: ray`, on this machine by default or on a cluster with `--address`).

Both executors take a pure function and a list of argument tuples and yield `(index, result)`
as jobs finish, so the caller stores each result exactly once, in whatever order they arrive.
Jobs must be deterministic functions of their arguments: a Ray task whose worker dies is
retried (`max_retries`) and returns the same result, so a retry can neither lose nor
double-count anything. Large shared arguments (a game, a lineup of policies) go through `share`
once instead of being shipped with every job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class JobFailed(RuntimeError):
    """A job failed for good (its retries are used up); finished jobs are already stored."""


class LocalExecutor:
    name = "local"

    def share(self, obj: Any) -> Any:
        return obj

    def run_unordered(self, fn: Callable[..., Any], jobs: Sequence[tuple], stop: Callable[[], bool] | None = None
                      ) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(jobs):
            if stop is not None and stop():
                return
            yield i, fn(*args)


def ray_init(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start Ray on this machine (no dashboard, workers' output not mirrored) or join the cluster
    at `address` (also taken from RAY_ADDRESS, as Ray itself does)."""
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return ray


class RayExecutor:
    """Jobs as Ray tasks; at most `max_in_flight` submitted at once (default: twice the cluster's CPUs)."""

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 3, max_in_flight: int | None = None):
        self.ray = ray_init(address)
        self.max_retries = max_retries
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or 2 * cpus

    def share(self, obj: Any) -> Any:
        return self.ray.put(obj)

    def run_unordered(self, fn: Callable[..., Any], jobs: Sequence[tuple], stop: Callable[[], bool] | None = None
                      ) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        # system failures (a killed worker or node) are retried; exceptions raised by fn are not,
        # since a deterministic job would only raise again
        remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(fn)
        pending: dict[Any, int] = {}
        nxt = 0
        try:
            while nxt < len(jobs) or pending:
                while nxt < len(jobs) and len(pending) < self.max_in_flight and not (stop is not None and stop()):
                    pending[remote.remote(*jobs[nxt])] = nxt
                    nxt += 1
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.TaskCancelledError) as err:
                        raise JobFailed(f"job {i} failed after {self.max_retries} retries: "
                                        f"{type(err).__name__}") from None
                    yield i, result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def make_executor(backend: str, address: str | None = None) -> LocalExecutor | RayExecutor:
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("backend ray needs ray (pip install 'equilibria[rllib]')") from None
        return RayExecutor(address)
    return LocalExecutor()
