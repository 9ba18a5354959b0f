"""What one crop of the store path costs on the CPU, part by part, against the batched bicubic.

  python benchmarks/store_read.py [--repeats 200]

On one raw 2040x1356 image (DIV2K's HR size, random pixels), single-threaded, median over
`--repeats` crops at varying corners: `store.read_crop` at crop 384 and 96 from the image stored
in strips of 64, 128 (the default, `store.STRIP_WIDTH`) and 256 columns and as whole rows (one
strip of 2040: format version 1), the copy of a 384 crop into a batch array, the same copy
horizontally flipped and transposed (as `--augment flip_rot90` needs), and the batched bicubic
x4 of `data.pairs_of_batch` on 16 crops, per crop, in process CPU time (it runs on every core).
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
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        for strip in (64, store.STRIP_WIDTH, 256, WIDTH):
            path = os.path.join(tmp, f"strips_{strip}.rgb")
            with open(path, "wb") as f:
                f.write(store.to_strips(image, strip))
            for crop in (CROP, 96):
                out = np.empty((crop, crop, 3), np.uint8)

                def read(i, path=path, strip=strip, crop=crop, out=out):
                    y, x = 4 * (i * 37 % ((HEIGHT - crop) // 4)), 4 * (i * 53 % ((WIDTH - crop) // 4))
                    store.read_crop(path, HEIGHT, WIDTH, strip, y, x, crop, out)
                label = "whole rows" if strip == WIDTH else f"strips of {strip}"
                print(f"read_crop {crop}, {label}: {_median_ms(read, args.repeats):.3f} ms per crop")
    patch = image[:CROP, :CROP]
    out = np.empty((CROP, CROP, 3), np.uint8)
    rows = {
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
