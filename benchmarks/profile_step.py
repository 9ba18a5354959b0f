"""Where the init train step's time goes: TensorFlow ops by total time on the compute threads.

  python benchmarks/profile_step.py --preset paper --precision mixed_bfloat16
  python benchmarks/profile_step.py --preset tensorlayer --precision float32 --top 15

Runs the Trainer's compiled init step (as `python -m srgan_tf.bench` times it: batch 16, LR 24 ->
HR 96, random data) 3 times to warm up, then `--steps` times under `tf.profiler`, and prints per
op type its thread time per step, its share of all op time, and its calls per step; then the
`--top` single ops (by name) with their ms per call. Thread time adds the ops that run at the same
time on different threads, so it can exceed the step's wall time.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile

import tensorflow as tf
# The profiler writes XSpace protos; TensorFlow's wheel carries their Python bindings here.
from tensorflow.tsl.profiler.protobuf import xplane_pb2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from srgan_tf import bench  # pylint: disable=wrong-import-position
from srgan_tf.bench.ceilings import _Policy  # pylint: disable=wrong-import-position
from srgan_tf.bench.steps import build_step  # pylint: disable=wrong-import-position

BATCH, LR_PATCH = 16, 24


def profile(preset, policy, steps, logdir):
    """Runs the step under the profiler; returns the path of the XSpace it wrote."""
    config = bench.BenchConfig(sections=("init",), presets=(preset,), precisions=(policy,),
                               batch_size=BATCH, lr_patch=LR_PATCH).validate()
    with _Policy(policy), tempfile.TemporaryDirectory() as tmp:
        _, step, (lr, hr) = build_step(config, "init", preset, tmp)
        for _ in range(3):
            step(lr, hr)
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step(lr, hr)
        tf.profiler.experimental.stop()
    return glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0]


def op_events(path):
    """Yields (op name, op type, ms) for every op the compute threads ran."""
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # Ops are "scope/op_name:OpType"; the executor's own spans hold whole steps.
                if ":" in name and not name.startswith("ExecutorState"):
                    op_name, op_type = name.rsplit(":", 1)
                    yield op_name, op_type, event.duration_ps / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logdir:
        events = list(op_events(profile(args.preset, args.precision, args.steps, logdir)))
    by_type, calls, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    for op_name, op_type, ms in events:
        by_type[op_type] += ms / args.steps
        calls[op_type] += 1
        by_op[f"{op_name} ({op_type})"] += ms / args.steps
    total = sum(by_type.values())
    print(f"init step, {args.preset}, {args.precision}: {total:.0f} ms of op time per step")
    print("| op type | ms per step | share | calls per step |\n| --- | --- | --- | --- |")
    for op_type, ms in by_type.most_common():
        if ms >= 0.005 * total:
            print(f"| {op_type} | {ms:.1f} | {ms / total:.1%} | {calls[op_type] / args.steps:.0f} |")
    print("\nlargest single ops, ms per step:")
    for name, ms in by_op.most_common(args.top):
        print(f"{ms:8.1f}  {name}")


if __name__ == "__main__":
    main()
