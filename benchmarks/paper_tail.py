"""The paper generator's tail, forward + backward, with and without the pixel shuffle round trip.

  python benchmarks/paper_tail.py mixed_bfloat16 3     # Keras policy, rounds (interleaved)
  python benchmarks/paper_tail.py float32 3

The tail is the last upsample's pre-shuffle activations z [16, 48, 48, 256] -> PReLU -> the 9x9
conv to 3 channels (FoldedConv2D) -> tanh, at HR 96x96, with the gradients of z and of every
weight. "shuffled" runs it as the layers' calls do, `conv_last(prelu(depth_to_space(z, 2)))`, whose
folded conv starts with space_to_depth; "on_blocks" is the generator's path,
`conv_last.call_on_blocks(prelu.call_on_blocks(z, 2))`. Prints the median ms of 10 calls per round
(and in float32 the largest difference between the two paths' loss and gradients).
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from srgan_tf.bench.ceilings import median_seconds
from srgan_tf.models.blocks import FoldedConv2D, PReLU

B, H, C = 16, 48, 64


def main(policy="mixed_bfloat16", rounds=3):
    keras.mixed_precision.set_global_policy(policy)
    conv = FoldedConv2D(3, 9, fold=2, padding="same", activation="tanh")
    prelu = PReLU(shared_axes=[1, 2])
    conv.build([None, None, None, C])
    prelu.build([None, None, None, C])
    prelu.alpha.assign(tf.random.stateless_uniform([1, 1, C], [1, 2], 0.0, 0.5))
    z = tf.cast(tf.random.stateless_normal([B, H, H, 4 * C], [3, 4]), conv.compute_dtype)
    weights = [conv.kernel, conv.bias, prelu.alpha]

    def tail(on_blocks):
        @tf.function
        def run(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                y = (conv.call_on_blocks(prelu.call_on_blocks(z, 2)) if on_blocks
                     else conv(prelu(tf.nn.depth_to_space(z, 2))))
                loss = tf.reduce_mean(tf.cast(y, tf.float32) ** 2)
            return [loss] + tape.gradient(loss, [z] + weights)
        return run

    paths = {"shuffled": tail(False), "on_blocks": tail(True)}
    results = {name: run(z) for name, run in paths.items()}
    if policy == "float32":  # tests/test_models.py checks both precisions against Conv2D's path
        flat = [[t.numpy() for t in r] for r in results.values()]
        diff = max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(*flat))
        print(f"largest difference between the paths, relative to the largest value of each "
              f"result: {diff:.3g}")
    for round_index in range(rounds):
        figures = []
        for name, run in paths.items():
            seconds = median_seconds(lambda run=run: run(z)[0], 0, 10)
            figures.append(f"{name} {1e3 * seconds:.1f} ms")
        print(f"round {round_index + 1}/{rounds}: " + ", ".join(figures), flush=True)


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["mixed_bfloat16"]), *(int(a) for a in sys.argv[2:3]))
