"""Times our init train step against the PyTorch SRResNet doing the same work, in one run.

  pip install -e .[peers]   # torch; on a CPU-only machine its CPU build (pip install torch==2.13.0)
  python benchmarks/peer_srresnet.py                     # 3 interleaved rounds, float32 (+ bf16)
  python benchmarks/peer_srresnet.py --rounds 5 --presets paper,tensorlayer --precisions float32

The work of one step, on both sides: batch 16 of LR 24x24 -> HR 96x96, the generator forward,
MSE against a fixed random HR batch, backward, one Adam update. Ours is the Trainer's compiled step
(`Trainer.step_function()`, as `python -m srgan_tf.bench` times it), in this process; the peer is
`_NetG` of twtygqyy/pytorch-SRResNet (benchmarks/peers/srresnet_torch.py), run right after in a
child process with the same number of threads (torch and TensorFlow each keep their own thread
pools, which would compete inside one process). bf16 is timed only where the CPU has it natively
(`--precisions` forces it): ours under mixed_bfloat16, the peer under torch.autocast(bfloat16).

Each round times ours, then the peer, for every precision; the table gives the median over the
rounds of each one's median step, the peer / ours ratio, and the share of the conv ceiling
(bench.conv_gflops, measured in the same round) that our step reaches.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BATCH, LR_PATCH, SCALE = 16, 24, 4
TORCH_DTYPES = {"float32": None, "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def peer_step_ms(precision, warmup, repeats, threads):
    """Median ms of one PyTorch SRResNet train step (runs in the child process)."""
    import torch  # pylint: disable=import-outside-toplevel
    sys.path.insert(0, HERE)
    from peers.srresnet_torch import NetG  # pylint: disable=import-outside-toplevel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = NetG()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
    lr = torch.rand(BATCH, 3, LR_PATCH, LR_PATCH) * 2 - 1
    hr = torch.rand(BATCH, 3, SCALE * LR_PATCH, SCALE * LR_PATCH) * 2 - 1
    dtype = TORCH_DTYPES[precision]

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=getattr(torch, dtype or "bfloat16"),
                            enabled=dtype is not None):
            sr = net(lr)
        loss = torch.nn.functional.mse_loss(sr.float(), hr)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run_peer(precision, warmup, repeats, threads):
    """Runs `peer_step_ms` in a fresh child process; returns its ms."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--peer_child", precision,
                             "--warmup", str(warmup), "--repeats", str(repeats),
                             "--threads", str(threads)],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"the PyTorch peer failed: {result.stderr.strip().splitlines()[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presets", default="paper", help="comma list of our presets")
    parser.add_argument("--precisions", default=None,
                        help="comma list (default: float32, and mixed_bfloat16 where native)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--unfolded", action="store_true",
                        help="also time the paper preset with its last conv as Keras's Conv2D "
                             "(as before FoldedConv2D): row 'ours paper-conv2d'")
    parser.add_argument("--autodiff_prelu", action="store_true",
                        help="also time the paper preset with its PReLUs' gradient by autodiff "
                             "of the select (as before blocks.prelu): row 'ours paper-autodiff'")
    parser.add_argument("--conv_gradient", action="store_true",
                        help="also time the paper preset with its folded last conv's gradients "
                             "by convolutions (as before the matmul gradient): row "
                             "'ours paper-convgrad'")
    parser.add_argument("--output_json", default=None)
    parser.add_argument("--peer_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_child:
        print(json.dumps({"ms": peer_step_ms(args.peer_child, args.warmup, args.repeats,
                                             args.threads)}))
        return

    sys.path.insert(0, ROOT)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from srgan_tf import bench, precision  # pylint: disable=import-outside-toplevel
    from srgan_tf.models import blocks, generator  # pylint: disable=import-outside-toplevel

    precisions = (args.precisions.split(",") if args.precisions
                  else [p for p in ("float32", "mixed_bfloat16")
                        if p in precision.native_precisions()])
    presets = args.presets.split(",")
    config = bench.BenchConfig(sections=("init",), presets=tuple(presets),
                               precisions=tuple(precisions), batch_size=BATCH,
                               lr_patch=LR_PATCH, warmup=args.warmup,
                               repeats=args.repeats).validate()
    figures = {}  # (name, precision) -> [ms per round]; ("ceiling", precision) -> GFLOP/s
    shares = {}
    for round_index in range(args.rounds):
        for policy in precisions:
            ceiling = bench.conv_gflops(BATCH, SCALE * LR_PATCH, 64,
                                        tf.as_dtype(bench.COMPUTE_DTYPES[policy]), 1, 5)
            variants = [(p, p) for p in presets] + (
                [("paper-conv2d", "paper")] if args.unfolded else []) + (
                [("paper-autodiff", "paper")] if args.autodiff_prelu else []) + (
                [("paper-convgrad", "paper")] if args.conv_gradient else [])
            for name, preset in variants:
                fold_kernel = generator._FOLD_KERNEL  # pylint: disable=protected-access
                if name == "paper-conv2d":
                    generator._FOLD_KERNEL = sys.maxsize  # pylint: disable=protected-access
                blocks.PReLU.mask_gradient = name != "paper-autodiff"
                blocks.FoldedConv2D.matmul_gradient = name != "paper-convgrad"
                try:
                    ours = bench.measure_step(config, "init", preset, policy)
                finally:
                    generator._FOLD_KERNEL = fold_kernel  # pylint: disable=protected-access
                    blocks.PReLU.mask_gradient = True
                    blocks.FoldedConv2D.matmul_gradient = True
                figures.setdefault((f"ours {name}", policy), []).append(ours["ms"])
                shares.setdefault((name, policy), []).append(ours["gflops"] / ceiling)
            figures.setdefault(("pytorch SRResNet", policy), []).append(
                run_peer(policy, args.warmup, args.repeats, args.threads))
            print(f"round {round_index + 1}/{args.rounds} {policy}: conv ceiling {ceiling:.0f} "
                  "GFLOP/s, " + ", ".join(
                      f"{name} {ms[-1]:.0f} ms" + (f" ({shares[(name[5:], p)][-1]:.0%})"
                                                   if name.startswith("ours") else "")
                      for (name, p), ms in figures.items() if p == policy),
                  file=sys.stderr, flush=True)
    print(f"init step, batch {BATCH}, LR {LR_PATCH} -> HR {SCALE * LR_PATCH}, {args.threads} "
          f"threads, median of {args.rounds} interleaved rounds (each the median of "
          f"{args.repeats} steps)\n")
    print("| step | precision | ms | peer / ours | of the conv ceiling |")
    print("| --- | --- | --- | --- | --- |")
    summary = {}
    for (name, policy), times in figures.items():
        ms = statistics.median(times)
        peer = statistics.median(figures[("pytorch SRResNet", policy)])
        ratio = f"{peer / ms:.2f}x" if name.startswith("ours") else ""
        preset = name.split()[-1]
        share = (f"{statistics.median(shares[(preset, policy)]):.0%}"
                 if name.startswith("ours") else "")
        print(f"| {name} | {policy} | {ms:.0f} | {ratio} | {share} |")
        summary[f"{name} {policy}"] = {"ms": times, "median_ms": ms}
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump({"figures": summary, "shares": {f"{k[0]} {k[1]}": v
                                                      for k, v in shares.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
