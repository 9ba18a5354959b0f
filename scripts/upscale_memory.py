"""Peak resident memory of `python -m srgan_tf.upscale` as the input grows.

Builds the default generator (random weights: memory and time don't depend on the weights), writes
synthetic RGB inputs of each size, runs the upscale CLI on each in a fresh subprocess and reports
that subprocess's own peak RSS and wall time (`srgan_tf.bench.run_upscale`). A 32x32 run gives the
fixed cost of Python, TensorFlow and the model.

  python scripts/upscale_memory.py                       # 512x512 and 2048x2048, default tile
  python scripts/upscale_memory.py --sizes 512 --tile 0  # untiled, for comparison
"""

import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,2048", help="input sides, comma separated")
    parser.add_argument("--tile", type=int, default=None,
                        help="--tile of the CLI (default: the CLI's own)")
    parser.add_argument("--num_block", type=int, default=16, help="generator residual blocks")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from PIL import Image  # pylint: disable=import-outside-toplevel

    # pylint: disable=import-outside-toplevel
    from srgan_tf.bench import run_upscale, synthetic_image
    from srgan_tf.models import Generator

    with tempfile.TemporaryDirectory() as tmp:
        generator = Generator(num_block=args.num_block)
        generator(np.zeros([1, 8, 8, 3], np.float32))
        model = os.path.join(tmp, "generator.keras")
        generator.save(model)
        rows = []
        for size in [32] + [int(s) for s in args.sizes.split(",")]:
            path = os.path.join(tmp, f"in{size}.png")
            Image.fromarray(synthetic_image(size)).save(path)
            cli = [path, "--output_dir", os.path.join(tmp, "out"), "--model", model]
            if args.tile is not None:
                cli += ["--tile", str(args.tile)]
            run = run_upscale(cli)
            rss, seconds, code = run.peak_rss_bytes / 2 ** 20, run.seconds, run.exit_code
            if code:
                print(run.stderr, file=sys.stderr)
            out = os.path.join(tmp, "out", f"in{size}_x4.png")
            out_size = Image.open(out).size if code == 0 else None
            rows.append((size, rss, seconds, code, out_size))
            print(f"{size}x{size} -> {out_size}: peak RSS {rss:.0f} MiB, {seconds:.1f} s, "
                  f"exit {code}", flush=True)
    print(f"\ngenerator: default recipe with {args.num_block} blocks; tile "
          f"{'CLI default' if args.tile is None else args.tile}; {os.cpu_count()} CPUs")
    print("| input | output | peak RSS (MiB) | wall time (s) |\n| --- | --- | --- | --- |")
    for size, rss, seconds, code, out_size in rows:
        out = f"{out_size[0]}x{out_size[1]}" if out_size else f"failed ({code})"
        print(f"| {size}x{size} | {out} | {rss:.0f} | {seconds:.1f} |")
    return max(row[3] for row in rows)


if __name__ == "__main__":
    sys.exit(main())
