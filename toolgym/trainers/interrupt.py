"""Ctrl-C during training saves a checkpoint instead of losing the steps since the last one.

A real model's GRPO step takes minutes on a CPU (SmolLM2, 32 episodes: 12-14 minutes on 2 cores),
so ``save_steps`` apart can be an hour of work. The first SIGINT asks the trainer, through the
callback API, to save a checkpoint and stop at the end of the current step; ``--resume`` continues
from it. The handler it replaced is back from then on, so a second SIGINT interrupts at once.
"""

from __future__ import annotations

import signal
import sys
import threading

from transformers import TrainerCallback


class StopOnInterrupt(TrainerCallback):
    """Turns the first SIGINT of a run into "save a checkpoint and stop after this step".

    ``interrupted`` tells afterwards whether the run stopped that way. The handler is installed for
    the run only (from ``on_train_begin`` to the first SIGINT or ``on_train_end``) and only in the
    main thread, where Python delivers signals.
    """

    def __init__(self):
        self.interrupted = False
        self._previous = None

    def _handle(self, signum, frame):
        self._restore()  # the next Ctrl-C goes to the previous handler: it stops at once
        self.interrupted = True
        print("\ninterrupted: saving a checkpoint at the end of this step, then stopping "
              "(Ctrl-C again to stop at once, losing the step)", file=sys.stderr, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def on_step_end(self, args, state, control, **kwargs):
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()

    def _restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
