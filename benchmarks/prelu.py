"""Times ways of computing the PReLU's gradient, alone and inside the paper preset's init step.

  python benchmarks/prelu.py                          # one PReLU at the generator's shapes
  python benchmarks/prelu.py --step --rounds 5        # also the whole init step, interleaved
  python benchmarks/prelu.py --memory                 # the step's peak RSS with each way

All four compute Keras's PReLU with one slope per channel:
- autodiff: `where(x > 0, x, alpha * x)` differentiated by TensorFlow (both branches of the
  select: two selects, a multiply and an AddN for the input, a multiply, a select and a sum for
  the slopes);
- reduce_sum: the same select with a gradient written by hand that reuses the sign mask (one
  select for the input, a masked product and `tf.reduce_sum` for the slopes);
- matmul: `blocks.prelu` as the generator runs it: reduce_sum's gradient with the per-channel sum
  as a matmul by a row of ones (`blocks._channel_sums`);
- slope: x times a per-element slope (1 or alpha) kept for the backward pass, whose input
  gradient is then one multiply: fewer passes, but one more activation-sized tensor kept per
  PReLU (not used by the generator: see docs/benchmarks.md).

Ops: the median ms of one compiled forward + backward at each shape, float32 and (where the CPU has
it natively, or forced with --precisions) bfloat16, plus the per-channel sum alone. Step: the paper
preset's init step (`bench.measure_step`, batch 16, LR 24 -> HR 96) with the generator's PReLUs
switched to each way, the ways interleaved round by round; the median over the rounds of each
round's median step. Memory: the peak resident set of a fresh process that builds and runs that
step (`--memory_lr_patch`, default 48) with each way.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tensorflow as tf  # pylint: disable=wrong-import-position

from srgan_tf import bench, precision  # pylint: disable=wrong-import-position
from srgan_tf.bench.ceilings import median_seconds  # pylint: disable=wrong-import-position
from srgan_tf.models import blocks  # pylint: disable=wrong-import-position

# The paper generator's PReLU inputs: a trunk block at LR 24, and the last one, on the folded
# conv's blocks (HR 96 as [48, 48, 4 x 64]).
SHAPES = {"trunk [16, 24, 24, 64]": [16, 24, 24, 64], "last [16, 48, 48, 256]": [16, 48, 48, 256]}
WAYS = ("autodiff", "reduce_sum", "matmul", "slope")


@tf.custom_gradient
def reduce_sum_prelu(x, alpha):
    """blocks.prelu with the slopes' gradient summed by tf.reduce_sum (the generator's before)."""
    positive = x > 0

    def grad(upstream):
        dx = tf.where(positive, upstream, alpha * upstream)
        dalpha = tf.reduce_sum(tf.where(positive, tf.zeros([], upstream.dtype), x * upstream),
                               axis=list(range(x.shape.rank - 1)))
        return dx, tf.reshape(dalpha, tf.shape(alpha))

    return tf.where(positive, x, alpha * x), grad


@tf.custom_gradient
def slope_prelu(x, alpha):
    """x times its slope (1 where x > 0, else alpha), the slope kept for the input gradient."""
    positive = x > 0
    slope = tf.where(positive, tf.ones([], x.dtype), alpha)

    def grad(upstream):
        masked = tf.where(positive, tf.zeros([], upstream.dtype), x * upstream)
        dalpha = blocks._channel_sums(masked)  # pylint: disable=protected-access
        return upstream * slope, tf.reshape(dalpha, tf.shape(alpha))

    return x * slope, grad


def autodiff_prelu(x, alpha):
    return tf.where(x > 0, x, alpha * x)


FUNCTIONS = {"autodiff": autodiff_prelu, "reduce_sum": reduce_sum_prelu, "matmul": blocks.prelu,
             "slope": slope_prelu}


class _Way:
    """Context: the generator's PReLUs computed the given way (blocks.prelu swapped)."""

    def __init__(self, way):
        self.way = way

    def __enter__(self):
        blocks.PReLU.mask_gradient = self.way != "autodiff"
        blocks.prelu = FUNCTIONS["matmul" if self.way == "autodiff" else self.way]

    def __exit__(self, *exc):
        blocks.PReLU.mask_gradient = True
        blocks.prelu = FUNCTIONS["matmul"]


def time_op(fn, shape, dtype, repeats):
    """Median ms of fn's forward and its gradients (input and slopes) at `shape` in `dtype`."""
    x = tf.cast(tf.random.stateless_normal(shape, [1, 2]), dtype)
    upstream = tf.cast(tf.random.stateless_normal(shape, [3, 4]), dtype)
    alpha = tf.fill([1, 1, 1, shape[-1]], tf.constant(0.25, dtype))

    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([x, alpha])
            y = fn(x, alpha)
        return y, tape.gradient(y, [x, alpha], output_gradients=upstream)

    step = tf.function(forward_backward, autograph=False)
    return 1e3 * median_seconds(step, 3, repeats)


def time_sums(shape, dtype, repeats):
    """Median ms of the per-channel sum of a [shape] tensor: tf.reduce_sum, then as a matmul."""
    t = tf.cast(tf.random.stateless_normal(shape, [5, 6]), dtype)
    reduce_sum = tf.function(lambda: tf.reduce_sum(t, axis=[0, 1, 2]))
    matmul = tf.function(lambda: blocks._channel_sums(t))  # pylint: disable=protected-access
    return [1e3 * median_seconds(f, 3, repeats) for f in (reduce_sum, matmul)]


def time_steps(precisions, rounds, repeats):
    """{(way, policy): [ms per round]} of the paper init step with each way of PReLU."""
    config = bench.BenchConfig(sections=("init",), presets=("paper",), precisions=precisions,
                               batch_size=16, lr_patch=24, warmup=1, repeats=repeats).validate()
    figures = {}
    for round_index in range(rounds):
        for policy in precisions:
            for way in WAYS:
                with _Way(way):
                    ms = bench.measure_step(config, "init", "paper", policy)["ms"]
                figures.setdefault((way, policy), []).append(ms)
            print(f"round {round_index + 1}/{rounds} {policy}: " + ", ".join(
                f"{way} {figures[(way, policy)][-1]:.0f} ms" for way in WAYS),
                file=sys.stderr, flush=True)
    return figures


def peak_rss_mb(way, policy, lr_patch):
    """Peak RSS (MB) of this process after building and running the paper init step (child)."""
    config = bench.BenchConfig(sections=("init",), presets=("paper",), precisions=(policy,),
                               batch_size=16, lr_patch=lr_patch, warmup=1, repeats=2).validate()
    with _Way(way):
        bench.measure_step(config, "init", "paper", policy)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak_rss_mb(way, policy, lr_patch):
    """Runs `peak_rss_mb` in a fresh process (peak RSS only grows within one)."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss_child", way,
                             "--precisions", policy, "--memory_lr_patch", str(lr_patch)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--precisions", default=None,
                        help="comma list of float32, bfloat16 (default: float32, and bfloat16 "
                             "where native)")
    parser.add_argument("--repeats", type=int, default=20, help="op calls timed per median")
    parser.add_argument("--step", action="store_true", help="also time the paper init step")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --step")
    parser.add_argument("--step_repeats", type=int, default=3, help="steps timed per round")
    parser.add_argument("--memory", action="store_true", help="the step's peak RSS per way")
    parser.add_argument("--memory_lr_patch", type=int, default=48)
    parser.add_argument("--rss_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        print(peak_rss_mb(args.rss_child, args.precisions, args.memory_lr_patch))
        return
    dtypes = (args.precisions.split(",") if args.precisions else
              ["float32"] + (["bfloat16"] if "mixed_bfloat16" in precision.native_precisions()
                             else []))
    print("forward + backward of one PReLU, median ms\n")
    print("| shape | dtype | " + " | ".join(WAYS) + " | autodiff / matmul |")
    print("| --- | --- |" + " --- |" * (len(WAYS) + 1))
    for label, shape in SHAPES.items():
        for dtype in dtypes:
            ms = [time_op(FUNCTIONS[way], shape, tf.as_dtype(dtype), args.repeats)
                  for way in WAYS]
            print(f"| {label} | {dtype} | " + " | ".join(f"{m:.2f}" for m in ms)
                  + f" | {ms[0] / ms[2]:.2f}x |", flush=True)
    print("\nper-channel sum of the last PReLU's input, median ms\n")
    print("| dtype | tf.reduce_sum | matmul by ones |\n| --- | --- | --- |")
    for dtype in dtypes:
        reduce_ms, matmul_ms = time_sums(SHAPES["last [16, 48, 48, 256]"], tf.as_dtype(dtype),
                                         args.repeats)
        print(f"| {dtype} | {reduce_ms:.2f} | {matmul_ms:.2f} |", flush=True)
    policies = tuple("mixed_bfloat16" if d == "bfloat16" else d for d in dtypes)
    if args.memory:
        print(f"\npaper init step, batch 16, LR {args.memory_lr_patch}: peak RSS of a fresh "
              "process, MB\n")
        print("| precision | " + " | ".join(WAYS) + " |\n| --- |" + " --- |" * len(WAYS))
        for policy in policies:
            print(f"| {policy} | " + " | ".join(
                f"{child_peak_rss_mb(way, policy, args.memory_lr_patch):.0f}" for way in WAYS)
                + " |", flush=True)
    if not args.step:
        return
    figures = time_steps(policies, args.rounds, args.step_repeats)
    print(f"\npaper init step, batch 16, LR 24 -> HR 96, median of {args.rounds} interleaved "
          f"rounds (each the median of {args.step_repeats} steps), ms\n")
    print("| precision | " + " | ".join(WAYS) + " | reduce_sum / matmul |")
    print("| --- |" + " --- |" * (len(WAYS) + 1))
    for policy in policies:
        ms = [statistics.median(figures[(way, policy)]) for way in WAYS]
        print(f"| {policy} | " + " | ".join(f"{m:.0f}" for m in ms)
              + f" | {ms[1] / ms[2]:.2f}x |")


if __name__ == "__main__":
    main()
