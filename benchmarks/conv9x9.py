"""Formulations of the paper generator's last conv (9x9, 64 -> 3, "same") timed against the conv
ceiling, forward + input and kernel gradients, at [16, 96, 96, 64]: how FoldedConv2D was chosen.
`fold2` is FoldedConv2D as the generator runs it (gradients by matmuls), `fold2conv` the same conv
with the gradients of tf.nn.conv2d.

  python benchmarks/conv9x9.py float32 3      # dtype, rounds (interleaved)
  python benchmarks/conv9x9.py bfloat16 3
  python benchmarks/conv9x9.py float32 3 first  # the first conv: 9x9 3 -> 64 at [16, 24, 24]

The first conv's input is the data: as in the train step, only its kernel gradient is computed.

Times are process CPU seconds / 2 (two cores), which moves less than wall time when other
processes share the machine; each candidate's share is (its FLOPs as a 9x9 conv / its time) over
(the 3x3 64->64 conv ceiling's FLOPs / its time), both measured in the same round.
"""

import statistics
import sys
import time

import numpy as np
import tensorflow as tf

from srgan_tf.models.blocks import FoldedConv2D

B, H, C, F, K = 16, 96, 64, 3, 9
BEFORE = (K - 1) // 2


def conv2d(x, k):
    return tf.nn.conv2d(x, k, 1, "SAME")


def padded(filters):
    """Conv2D to `filters` outputs (zero kernel columns), sliced back to F."""
    return lambda x, k: tf.nn.conv2d(x, tf.pad(k, [[0, 0]] * 3 + [[0, filters - F]]), 1,
                                     "SAME")[..., :F]


@tf.custom_gradient
def taps(x, k):
    """One matmul 64 -> 81 x 3 tap outputs (tap-major layout), then 81 shifted adds."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    kr = tf.reshape(tf.transpose(k, [2, 0, 1, 3]), [C, K * K * F])
    xf = tf.reshape(x, [-1, C])
    t = tf.reshape(tf.matmul(kr, xf, transpose_a=True, transpose_b=True), [K * K, F, b, h, w])
    t = tf.pad(t, [[0, 0], [0, 0], [0, 0], [BEFORE, K - 1 - BEFORE], [BEFORE, K - 1 - BEFORE]])
    y = tf.add_n([t[dy * K + dx, :, :, dy:dy + h, dx:dx + w] for dy in range(K) for dx in range(K)])

    def grad(g):
        g = tf.pad(tf.transpose(g, [3, 0, 1, 2]),
                   [[0, 0], [0, 0], [K - 1 - BEFORE, BEFORE], [K - 1 - BEFORE, BEFORE]])
        gt = tf.reshape(tf.stack([g[:, :, K - 1 - dy:K - 1 - dy + h, K - 1 - dx:K - 1 - dx + w]
                                  for dy in range(K) for dx in range(K)]), [K * K * F, -1])
        gx = tf.reshape(tf.matmul(gt, kr, transpose_a=True, transpose_b=True), tf.shape(x))
        gk = tf.matmul(xf, gt, transpose_a=True, transpose_b=True)
        return gx, tf.transpose(tf.reshape(gk, [C, K, K, F]), [1, 2, 0, 3])

    return tf.transpose(y, [1, 2, 3, 0]), grad


def columns(x, k):
    """9x1 conv to the 27 (dx, channel) outputs, then 9 shifted adds along the width."""
    w = tf.shape(x)[2]
    t = tf.nn.conv2d(x, tf.reshape(tf.transpose(k, [0, 2, 1, 3]), [K, 1, C, K * F]), 1, "SAME")
    t = tf.pad(t, [[0, 0], [0, 0], [BEFORE, K - 1 - BEFORE], [0, 0]])
    return tf.add_n([t[:, :, dx:dx + w, dx * F:(dx + 1) * F] for dx in range(K)])


def folded(fold, filters=F, matmul_gradient=True):
    """FoldedConv2D; matmul_gradient=False: its conv's gradients as oneDNN computes them."""
    layer = FoldedConv2D(filters, K, padding="same", use_bias=False, fold=fold)
    layer.matmul_gradient = matmul_gradient
    return lambda x, k: layer.convolution_op(x, k)


def first_conv(dtype, rounds):
    """Prints the CPU ms of the first conv, 9x9 3 -> 64 at [16, 24, 24], forward + kernel grad."""
    x = tf.cast(tf.random.stateless_uniform([B, 24, 24, 3], [1, 0], -1, 1), dtype)
    kernel = tf.cast(tf.random.stateless_normal([K, K, 3, 64], [2, 0]) * 0.05, dtype)
    gy = tf.cast(tf.random.stateless_uniform([B, 24, 24, 64], [3, 0], -1, 1), dtype)
    runs = {}
    for name, fn in [("conv2d", conv2d)] + [(f"fold{s}", folded(s, 64)) for s in (2, 3, 4)]:
        def run(fn=fn):
            with tf.GradientTape() as tape:
                tape.watch(kernel)
                y = fn(x, kernel)
            return [y, tape.gradient(y, kernel, output_gradients=gy)]
        runs[name] = tf.function(run)
        runs[name]()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(3):
                start = time.process_time()
                _ = [t.numpy() for t in run()]
                times[name].append((time.process_time() - start) / 2)
    print(f"| first conv 9x9 3->64, 16x24x24, forward + kernel gradient | {dtype.name} CPU ms / 2 |")
    print("| --- | --- |")
    for name, t in times.items():
        print(f"| {name} | {1e3 * statistics.median(t):.1f} |")


def main():
    dtype = tf.as_dtype(sys.argv[1] if len(sys.argv) > 1 else "float32")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    if sys.argv[3:] == ["first"]:
        first_conv(dtype, rounds)
        return
    candidates = {"conv2d": conv2d, "pad8": padded(8), "pad16": padded(16), "taps": taps,
                  "columns": columns, "fold2": folded(2), "fold2conv": folded(2, matmul_gradient=False),
                  "fold3": folded(3), "fold4": folded(4)}
    rand = lambda shape, seed: tf.cast(  # noqa: E731
        tf.random.stateless_uniform(shape, [seed, 0], -1, 1), dtype)
    x, kernel, gy = rand([B, H, H, C], 1), rand([K, K, C, F], 2) * 0.05, rand([B, H, H, F], 3)
    x3, kernel3, gy3 = rand([B, H, H, 64], 4), rand([3, 3, 64, 64], 5) * 0.05, rand([B, H, H, 64], 6)

    def forward_backward(fn, x, kernel, gy):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = fn(x, kernel)
            return [y] + tape.gradient(y, [x, kernel], output_gradients=gy)
        return run

    runs = {"ceiling 3x3 64->64": forward_backward(conv2d, x3, kernel3, gy3)}
    runs.update({name: forward_backward(fn, x, kernel, gy) for name, fn in candidates.items()})
    reference = [t.numpy().astype(np.float32) for t in runs["conv2d"]()]
    for name, run in runs.items():
        if name != "ceiling 3x3 64->64":
            errors = [np.abs(t.numpy().astype(np.float32) - r).max() / np.abs(r).max()
                      for t, r in zip(run(), reference)]
            print(f"{name}: max error / max value (y, dx, dkernel) "
                  + " ".join(f"{e:.1e}" for e in errors), flush=True)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(3):
                start = time.process_time()
                _ = [t.numpy() for t in run()]
                times[name].append((time.process_time() - start) / 2)
    flops9, flops3 = 3 * 2 * B * H * H * K * K * C * F, 3 * 2 * B * H * H * 9 * 64 * 64
    ceiling = flops3 / statistics.median(times["ceiling 3x3 64->64"])
    print(f"\n| formulation | {dtype.name} CPU ms / 2 | GFLOP/s (as 9x9) | of the ceiling |")
    print("| --- | --- | --- | --- |")
    for name, t in times.items():
        seconds = statistics.median(t)
        rate = (flops3 if name.startswith("ceiling") else flops9) / seconds
        print(f"| {name} | {1e3 * seconds:.0f} | {rate / 1e9:.0f} | {rate / ceiling:.0%} |")


if __name__ == "__main__":
    main()
