"""Inference time of one image, whole (the default below the memory budget) against 192-pixel tiles.

Runs the shipped SRResNet on a random RGB image of --size x --size in one process, alternating the
two ways --repeats times, and prints the median of each and the largest output difference.

  python scripts/upscale_tile_speed.py --size 256 --repeats 3
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="input side (LR pixels)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way")
    parser.add_argument("--tile", type=int, default=192, help="tile side to compare with")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from srgan_tf import upscale  # pylint: disable=import-outside-toplevel

    resolver, radius = upscale.load_resolver(model="srresnet")
    image = np.random.default_rng(0).integers(0, 256, [args.size, args.size, 3], np.uint8)
    upscale.upscale_array(resolver, image[:64, :64], tile=0)  # warm-up
    ways = {f"default ({upscale.resolve_tile('auto', args.size, args.size) or 'whole'})":
            upscale.resolve_tile("auto", args.size, args.size), f"tile {args.tile}": args.tile}
    seconds, outputs = {name: [] for name in ways}, {}
    for _ in range(args.repeats):
        for name, tile in ways.items():
            start = time.perf_counter()
            outputs[name] = upscale.upscale_array(resolver, image, tile=tile, overlap=radius)
            seconds[name].append(time.perf_counter() - start)
    for name, values in seconds.items():
        print(f"{args.size}x{args.size} {name}: median {statistics.median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    default, tiled = ways
    ratio = statistics.median(seconds[tiled]) / statistics.median(seconds[default])
    difference = np.abs(outputs[default].astype(int) - outputs[tiled]).max()
    print(f"median ratio tiled / default: {ratio:.2f}; largest output difference {difference} "
          "levels")


if __name__ == "__main__":
    main()
