"""What one crop of the store path costs on the CPU, part by part, against the batched bicubic.

  python benchmarks/store_read.py [--repeats 200]

On one raw 2040x1356 image (DIV2K's HR size, random pixels) and crop 384, single-threaded,
median over `--repeats` crops at varying corners: `store.read_crop` (an `os.pread` of the
crop's 384 full rows), the copy of the crop into a batch array, the same copy horizontally
flipped and transposed (as `--augment flip_rot90` needs), and the batched bicubic x4 of
`data.pairs_of_batch` on 16 crops, per crop, in process CPU time (it runs on every core).
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from srgan_tf import data, store

HEIGHT, WIDTH, CROP, BATCH = 1356, 2040, 384, 16


def _median_ms(fn, repeats, clock=time.perf_counter):
    times = []
    for i in range(repeats):
        start = clock()
        fn(i)
        times.append(clock() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "image.rgb")
        rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8).tofile(path)
        out = np.empty((CROP, CROP, 3), np.uint8)

        def corner(i):
            return 4 * (i * 37 % ((HEIGHT - CROP) // 4)), 4 * (i * 53 % ((WIDTH - CROP) // 4))

        patch = store.read_crop(path, WIDTH, 0, 0, CROP)
        rows = {
            "read_crop (pread of the crop's rows)": lambda i: store.read_crop(
                path, WIDTH, *corner(i), CROP),
            "copy into the batch": lambda i: out.__setitem__(Ellipsis, patch),
            "copy, flipped left-right": lambda i: out.__setitem__(Ellipsis, patch[:, ::-1]),
            "copy, transposed (rot90)": lambda i: out.__setitem__(Ellipsis, np.rot90(patch)),
        }
        for name, fn in rows.items():
            print(f"{name}: {_median_ms(fn, args.repeats):.3f} ms per crop")
    batch = tf.constant(rng.integers(0, 256, (BATCH, CROP, CROP, 3), np.uint8))
    bicubic = tf.function(data.pairs_of_batch)
    bicubic(batch)
    cpu_ms = _median_ms(lambda i: bicubic(batch)[0].numpy(), max(5, args.repeats // 20),
                        clock=time.process_time)
    print(f"batched bicubic x4 (pairs_of_batch, batch {BATCH}): {cpu_ms / BATCH:.3f} ms of CPU "
          "per crop")


if __name__ == "__main__":
    main()
