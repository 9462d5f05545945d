"""``python tests/kill_at.py EPOCH:STEP ARGS...``: ``fer-edge ARGS...`` that SIGKILLs itself mid-epoch.

The --resume tests need a run that dies the hard way (no handler, no flush) in the middle of
an epoch. This wrapper patches the training loop in its own process only, then runs the CLI as
``python -m fer_edge`` does; the product code has no such hook.
"""
from __future__ import annotations

import os
import signal
import sys


def install(epoch: int, step: int) -> None:
    """SIGKILL this process just before optimizer step ``step`` (0-based, 1 or more) of ``epoch``.

    The loop updates its progress after every step, and nothing runs between that update and
    the next step, so killing after the update of step ``step - 1`` is killing before ``step``.
    """
    from fer_edge.training import trainer

    update = trainer._Progress.update

    def update_then_kill(self: trainer._Progress, done: int, *args: object, **kwargs: object) -> None:
        update(self, done, *args, **kwargs)
        if (self.epoch, done + 1) == (epoch, step):
            os.kill(os.getpid(), signal.SIGKILL)

    trainer._Progress.update = update_then_kill  # type: ignore[method-assign]


def main() -> None:
    epoch, step = (int(v) for v in sys.argv[1].split(":"))
    if step < 1:
        raise SystemExit("kill_at.py: STEP must be 1 or more (the kill follows step STEP - 1)")
    # What the CLI sets before torch loads (OMP_WAIT_POLICY): patching imports torch first.
    from fer_edge.training.commands import _torch_env

    _torch_env()
    install(epoch, step)
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    from fer_edge.cli import run

    run()


if __name__ == "__main__":
    main()
