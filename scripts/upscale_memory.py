"""Peak resident memory of `python -m srgan_tf.upscale` as the input grows.

Builds the default generator (random weights: memory and time don't depend on the weights), writes
synthetic RGB inputs of each size, runs the upscale CLI on each in a fresh subprocess and reports
that subprocess's peak RSS (from wait4) and wall time. A 32x32 run gives the fixed cost of Python,
TensorFlow and the model.

  python scripts/upscale_memory.py                       # 512x512 and 2048x2048, default tile
  python scripts/upscale_memory.py --sizes 512 --tile 0  # untiled, for comparison
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_image(size, seed=0):
    """Returns uint8 [size, size, 3]: smooth colour blobs plus noise, compressible like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [size // 32 + 2, size // 32 + 2, 3])
    smooth = np.kron(coarse, np.ones([32, 32, 1]))[:size, :size]
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def run_upscale(args, env):
    """Runs the CLI; returns (peak RSS in MiB, seconds, exit status)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "srgan_tf.upscale", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(stderr, file=sys.stderr)
    return usage.ru_maxrss / 1024, seconds, code  # ru_maxrss is in KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,2048", help="input sides, comma separated")
    parser.add_argument("--tile", type=int, default=None,
                        help="--tile of the CLI (default: the CLI's own)")
    parser.add_argument("--num_block", type=int, default=16, help="generator residual blocks")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from srgan_tf.models import Generator  # pylint: disable=import-outside-toplevel

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
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
            rss, seconds, code = run_upscale(cli, env)
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
