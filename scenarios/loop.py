"""The loop every kind runs: step until the budget, an evaluation row every so often, a
checkpoint every so often and at the end, Ctrl-C / SIGTERM checkpointing and stopping with
the resume command, and a progress bar (or plain lines off a terminal).

A kind restores its checkpoint (RunContext.load_checkpoint / restore, truncate_metrics) before
calling `run_loop`, so the loop starts wherever the run left off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from equilibria.scenarios.rundir import Interrupted, RunContext


def _crossed(every: float | None, before: float, now: float) -> bool:
    return every is not None and int(now // every) > int(before // every)


def run_loop(ctx: RunContext, *, label: str, total: float, position: Callable[[], float], step: Callable[[], Any],
             evaluate: Callable[[Any], dict[str, Any]] | None = None, eval_every: float | None = None,
             eval_at_start: bool = False, eval_after_first: bool = False,
             save: Callable[[], None] | None = None, save_every: float | None = None,
             describe: Callable[[dict[str, Any]], str] = lambda row: "",
             counter: Callable[[], float] | None = None, also_done: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Call `step()` until `position()` reaches `total`; returns the last evaluation row.

    `evaluate(step_output)` gives a metrics row (logged to metrics.csv) whenever the position
    crosses a multiple of `eval_every`, at the end, and optionally before the first step of a
    fresh run (`eval_at_start`) or right after it (`eval_after_first`). `save()` checkpoints
    whenever the position crosses a multiple of `save_every`, at the end, and before stopping
    on a signal. A resumed run that is already finished runs no step and returns the last row
    of its metrics. `counter()` (default: the position) is what `eval_every` and `save_every`
    count; `also_done()` ends the loop early (a second budget, e.g. seconds beside iterations)."""
    count = counter or position

    def finished() -> bool:
        return position() >= total or (also_done is not None and also_done())

    last: dict[str, Any] = {}
    text = ""
    with ctx.interruptible(), ctx.progress(total, label) as update:
        if evaluate is not None and eval_at_start and count() == 0:
            last = evaluate(None)
            ctx.log_metrics(last)
            text = describe(last)
            update(0, text)
        while not finished():
            before = count()
            out = step()
            now = count()
            final = finished()
            if evaluate is not None and (_crossed(eval_every, before, now) or final
                                         or (eval_after_first and before == 0)):
                last = evaluate(out)
                ctx.log_metrics(last)
                text = describe(last)
            elif evaluate is None and isinstance(out, dict):  # the step logs its own rows
                text = describe(out)
            update(position(), text)
            if save is not None and (_crossed(save_every, before, now) or final):
                save()
            if ctx.stop_requested and not final:
                if save is not None:
                    save()
                raise Interrupted(ctx.run_dir, int(now))
    if not last and evaluate is not None:  # resumed a finished run: its last evaluation
        rows = ctx.read_metrics()
        last = rows[-1] if rows else {}
    return last
