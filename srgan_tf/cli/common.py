"""What every command-line entry point shares: flag parsing and one-line errors (exit code 2)."""

import sys
import time

from absl import app, flags, logging

from srgan_tf import files

USAGE_EXIT_CODE = 2
PROGRESS_SECONDS = 10  # interval of the plain progress lines written when stdout is no terminal


def fail(message):
    """Prints `error: <message>` as one line on stderr and exits with code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def run(main, module=None):
    """Runs `main(argv)` under absl with flag errors reported as one line, exit code 2.

    Args:
      main: function argv -> None.
      module: name of the module that defined the command's flags; absl's --help lists only the
        main script's flags, so these are adopted as its key flags.
    """
    if module is not None:
        for flag in flags.FLAGS.flags_by_module_dict().get(module, []):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=_parse_flags)


def write_json(results, path):
    """Writes a command's `--output_json` (never half-written) and logs it."""
    files.write_json(results, path, indent=2)
    logging.info("wrote %s", path)


class Progress:
    """Progress of a countable job on stdout: a Keras progress bar on a terminal, else plain lines.

    Redirected to a file or a pipe, stdout gets one plain line (no control codes) after the first
    unit (the first estimate of the time left), then at most every PROGRESS_SECONDS, and one at
    the end: `12/40 tiles (30%), 20 s, about 47 s left`.

    Args:
      total: the count when done (> 0).
      unit: what is counted, singular ("tile").
      stream: where lines go (default sys.stdout); a terminal there gets the bar.
    """

    def __init__(self, total, unit, stream=None):
        self.total, self.unit, self.done = max(1, total), unit, 0
        self._stream = stream or sys.stdout
        self._start = self._last = time.monotonic()
        self._bar = None
        self._lines = 0
        if getattr(self._stream, "isatty", lambda: False)():
            import keras  # pylint: disable=import-outside-toplevel
            self._bar = keras.utils.Progbar(self.total, unit_name=unit)

    def step(self):
        """Counts one more unit."""
        self.update(self.done + 1)

    def update(self, done):
        """Sets the count to `done` (clipped to the total)."""
        self.done = min(done, self.total)
        if self._bar is not None:
            self._bar.update(self.done)
        elif self.done and (not self._lines or time.monotonic() - self._last >= PROGRESS_SECONDS):
            self._line()

    def finish(self):
        """Writes the last plain line (the bar finishes by itself)."""
        if self._bar is None:
            self._line()

    def _line(self):
        self._lines += 1
        self._last = now = time.monotonic()
        elapsed = now - self._start
        line = (f"{self.done}/{self.total} {self.unit}s ({100 * self.done // self.total}%), "
                f"{elapsed:.0f} s")
        if 0 < self.done < self.total:
            line += f", about {elapsed * (self.total - self.done) / self.done:.0f} s left"
        print(line, file=self._stream, flush=True)
