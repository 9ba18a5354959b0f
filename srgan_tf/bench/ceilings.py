"""Timing (median of repeated calls), the machine's ceilings (matmul, 3x3 conv) and the device."""

import gc
import os
import statistics
import time

import keras
import tensorflow as tf

from srgan_tf import precision as precision_lib


def _wait(outputs):
    """Blocks until every output tensor is computed (reads one element of each)."""
    for tensor in tf.nest.flatten(outputs):
        tf.reshape(tensor, [-1])[:1].numpy()


def time_calls(fn, warmup, repeats, budget=None):
    """Calls `fn()` `warmup` times, then returns the wall times (seconds) of `repeats` calls.

    With `budget` (seconds), the timed calls stop early once they have taken that long together
    (at least one call is timed).
    """
    for _ in range(warmup):
        _wait(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _wait(fn())
        times.append(time.perf_counter() - start)
        if budget is not None and sum(times) >= budget:
            break
    return times


def median_seconds(fn, warmup, repeats):
    """Calls `fn()` `warmup` times, then returns the median wall time of `repeats` calls."""
    return statistics.median(time_calls(fn, warmup, repeats))


def _random(shape, dtype=tf.float32, seed=0):
    """float [shape] uniform in [-1, 1), seeded."""
    return tf.cast(tf.random.stateless_uniform(shape, [seed, 1], -1.0, 1.0), dtype)


def matmul_gflops(size, dtype, warmup, repeats):
    """GFLOP/s of a [size, size] x [size, size] tf.matmul in `dtype` (2 size^3 FLOPs)."""
    a, b = _random([size, size], dtype, 1), _random([size, size], dtype, 2)
    product = tf.function(lambda: tf.matmul(a, b))
    return 2 * size ** 3 / median_seconds(product, warmup, repeats) / 1e9


def conv_gflops(batch, size, feat, dtype, warmup, repeats):
    """GFLOP/s of a 3x3 `feat`->`feat` "same" convolution, forward + backward, in `dtype`.

    Forward, input gradient and kernel gradient each cost 2 x batch x size^2 x 9 x feat^2.
    """
    x = _random([batch, size, size, feat], dtype, 1)
    kernel = _random([3, 3, feat, feat], dtype, 2) * 0.05
    grad_y = _random([batch, size, size, feat], dtype, 3)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, 1, "SAME")
        grad_x, grad_kernel = tape.gradient(y, [x, kernel], output_gradients=grad_y)
        return y, grad_x, grad_kernel  # y too, or the forward would be pruned

    flops = 3 * 2 * batch * size * size * 9 * feat * feat
    return flops / median_seconds(forward_backward, warmup, repeats) / 1e9


class _Policy:
    """Context: Keras's global dtype policy set to `name`, then float32 and a cleared session."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        keras.mixed_precision.set_global_policy(self.name)

    def __exit__(self, *exc):
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()
        gc.collect()


def device_info():
    """Returns the device the benchmark runs on, the CPU's features, cores and threads."""
    gpus = tf.config.list_physical_devices("GPU")
    features = precision_lib.cpu_features()
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        device = f"GPU: {details.get('device_name', gpus[0].name)}" + (
            f" (compute capability {capability[0]}.{capability[1]})" if capability else "") + (
            f" x{len(gpus)}" if len(gpus) > 1 else "")
    else:
        device = f"CPU: {precision_lib.cpu_name()}"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    native = precision_lib.resolve_precision(
        "auto", features, precision_lib.gpu_compute_capabilities()) == "mixed_bfloat16"
    return {"device": device, "cpu": precision_lib.cpu_name(), "cpu_features": features,
            "cores": os.cpu_count(), "usable_cores": usable,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or None,
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or None,
            "bf16_native": bool(native),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "onednn_max_cpu_isa": precision_lib.onednn_isa_cap(),
            "tensorflow": tf.__version__, "keras": keras.__version__}
