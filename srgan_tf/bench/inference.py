"""Whole-image inference, and the peak RSS of a tiled `python -m srgan_tf.upscale` run."""

import dataclasses
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf.bench.ceilings import _Policy, _random, time_calls
from srgan_tf.bench.flops import forward_flops
from srgan_tf.bench.settings import ROOT
from srgan_tf.config import SCALE
from srgan_tf.loading import build_generator


def _time_inference(config):
    """Builds the generator under the current policy; returns {size: (times in s, FLOPs)}."""
    generator = build_generator(config.recipe(config.infer_preset))
    generator(tf.zeros([1, 8, 8, 3]))
    run = tf.function(lambda x: generator(x, training=False))
    figures = {}
    for size in config.infer_sizes:
        x = _random([1, size, size, 3], seed=6)
        figures[size] = (time_calls(lambda: run(x), config.warmup, config.repeats,
                                    config.time_budget),
                         forward_flops(generator, [1, size, size, 3]))
    return figures


def measure_inference(config, policy):
    """Times the generator (tf.function, batch 1, whole image) on each of `infer_sizes`.

    Returns:
      dict: str(size) -> {ms (median), min_ms, mpix_per_s (output megapixels/s), gflops}.
    """
    with _Policy(policy):
        figures = _time_inference(config)  # the generator is freed on return
    results = {}
    for size, (times, flops) in figures.items():
        seconds = statistics.median(times)
        results[str(size)] = {"ms": 1e3 * seconds, "min_ms": 1e3 * min(times),
                              "mpix_per_s": (SCALE * size) ** 2 / 1e6 / seconds,
                              "gflops": flops / seconds / 1e9}
        logging.info("inference %dx%d %s: %.1f ms", size, size, policy, 1e3 * seconds)
    return results


def synthetic_image(size, seed=0):
    """Returns uint8 [size, size, 3]: smooth colour blobs plus noise, compressible like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [size // 32 + 2, size // 32 + 2, 3])
    smooth = np.kron(coarse, np.ones([32, 32, 1]))[:size, :size]
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


@dataclasses.dataclass
class ProcessRun:
    """What `run_upscale` observed of its subprocess."""

    peak_rss_bytes: int  # ru_maxrss of the upscale process alone (see _RSS_PROBE)
    seconds: float
    exit_code: int
    timed_out: bool
    stdout: str
    stderr: str


def upscale_env():
    """Environment for `python -m srgan_tf.upscale` run from this checkout, with quiet TF logs."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")


# Runs `python ARGS` as the child of this small process and writes "<child's ru_maxrss in KiB>
# <exit code>" to a file. The kernel carries a process's peak RSS over fork and exec, so a child
# started straight from the (large) benchmark process would report the benchmark's own peak.
# SIGTERM kills the child, and its peak so far is still written.
_RSS_PROBE = """
import os, signal, sys
child = {"pid": 0, "stop": False}
def stop(*_):
    child["stop"] = True
    if child["pid"]:
        os.kill(child["pid"], signal.SIGKILL)
signal.signal(signal.SIGTERM, stop)
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable] + sys.argv[2:])
child["pid"] = pid
if child["stop"]:
    os.kill(pid, signal.SIGKILL)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_upscale(args, env=None, timeout=None):
    """Runs `python -m srgan_tf.upscale ARGS` in a fresh process and records its peak RSS.

    Args:
      args: the CLI's arguments.
      env: its environment (default: `upscale_env()`).
      timeout: seconds after which the process is killed (its peak so far is still reported).
    Returns:
      ProcessRun.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out, err = (open(os.path.join(tmp, name), "w+b") for name in ("out", "err"))
        report = os.path.join(tmp, "rss")
        start = time.perf_counter()
        with out, err:
            probe = subprocess.Popen(
                [sys.executable, "-c", _RSS_PROBE, report, "-m", "srgan_tf.upscale", *args],
                env=env or upscale_env(), stdout=out, stderr=err)
            try:
                probe.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                probe.terminate()  # the probe kills the upscale, then reports
                probe.wait()
                timed_out = True
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout, stderr = (f.read().decode(errors="replace") for f in (out, err))
        if not os.path.exists(report):
            raise RuntimeError(f"the peak-RSS probe failed (exit {probe.returncode}): "
                               f"{stderr[-1000:]}")
        with open(report, encoding="utf-8") as f:
            max_rss_kib, exit_code = (int(v) for v in f.read().split())
    return ProcessRun(max_rss_kib * 1024, seconds, exit_code, timed_out, stdout, stderr)


def measure_upscale(config):
    """Peak RSS and time of the upscale CLI on a synthetic `upscale_size` square image (tiled).

    The generator of `infer_preset` with random weights (memory and time don't depend on the
    weights) is saved as a .keras file; the CLI runs in float32 in a fresh process.

    Returns:
      dict: peak_rss_mb (10^6 bytes), seconds, complete (False when stopped by
      `upscale_timeout` or failed), tiles_done, tiles, exit_code.
    """
    size = config.upscale_size
    with _Policy("float32"), tempfile.TemporaryDirectory() as tmp:
        generator = build_generator(config.recipe(config.infer_preset))
        generator(tf.zeros([1, 8, 8, 3]))
        model = os.path.join(tmp, "generator.keras")
        generator.save(model)
        del generator
        image = os.path.join(tmp, f"in{size}.png")
        Image.fromarray(synthetic_image(size)).save(image)
        args = [image, "--output_dir", os.path.join(tmp, "out"), "--model", model]
        if config.upscale_tile is not None:
            args += ["--tile", str(config.upscale_tile)]
        run = run_upscale(args, timeout=config.upscale_timeout)
    if run.exit_code and not run.timed_out:
        logging.error("the upscale CLI failed (exit %d):\n%s", run.exit_code, run.stderr[-2000:])
    progress = re.findall(r"(\d+)/(\d+)", run.stdout)  # the CLI's progress bar: "tile/tiles"
    done, total = (int(v) for v in progress[-1]) if progress else (None, None)
    result = {"peak_rss_mb": run.peak_rss_bytes / 1e6, "seconds": run.seconds,
              "complete": run.exit_code == 0 and not run.timed_out, "exit_code": run.exit_code,
              "tiles_done": done, "tiles": total, "tile": config.upscale_tile, "size": size}
    logging.info("upscale %dx%d: peak RSS %.0f MB, %.0f s%s", size, size, result["peak_rss_mb"],
                 run.seconds, "" if result["complete"] else " (incomplete)")
    return result
