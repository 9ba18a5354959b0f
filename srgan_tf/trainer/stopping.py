"""How a stage stops early and safely: the errors it raises, the checkpoint save that names the
last good checkpoint when it fails, and SIGINT / SIGTERM noted to save and stop.
"""

import signal
import threading

import tensorflow as tf
from absl import logging

from srgan_tf import errors


class NonFiniteLossError(ValueError):
    """A loss term or gradient became NaN or infinite; no checkpoint was written from that state."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (e.g. the disk is full); the previous one is intact."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped training after a checkpoint was saved."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


def _save(manager, step):
    """Saves checkpoint `step`; on failure raises CheckpointWriteError naming the last good one.

    The CheckpointManager updates its index ("checkpoint" file) only after the new files are
    complete, so a failed or killed save leaves the previous checkpoint the latest.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
        raise CheckpointWriteError(
            f"cannot write checkpoint {step} in {manager.directory}: {errors.first_line(e)}; "
            f"the latest checkpoint is still {tf.train.latest_checkpoint(manager.directory)}"
        ) from None


class _SignalCatcher:
    """Notes SIGINT / SIGTERM during training so the loop can save a checkpoint and stop."""

    def __init__(self):
        self.received, self.name, self._previous = 0, "", {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum, frame):
        del frame  # unused
        if self.received:  # a second signal: stop at once
            self.restore()
            raise KeyboardInterrupt
        self.received, self.name = signum, signal.Signals(signum).name
        logging.warning("%s received: saving a checkpoint after this step, then stopping", self.name)

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
