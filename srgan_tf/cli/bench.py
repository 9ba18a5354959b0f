"""`python -m srgan_tf.bench`: training and inference throughput against the machine's ceilings.

Prints one table (device, matmul and conv ceilings, init and gan train steps, tf.data pipeline,
inference, tiled upscale memory) and optionally writes every figure as JSON.
  python -m srgan_tf.bench                                   # everything (~15 min on 2 CPU cores)
  python -m srgan_tf.bench --quick --output_json bench.json  # fewer repeats, same shapes
  python -m srgan_tf.bench --sections ceilings,init --presets paper --precisions float32
  python -m srgan_tf.bench --quick --sections init,gan --jit_compile off,on   # XLA or not
"""

import contextlib
import sys

from absl import flags, logging

from srgan_tf.cli import common
from srgan_tf.config import GAN_UPDATES, PRESETS

FLAGS = flags.FLAGS


def define_flags():
    """Defines the benchmark's flags (all optional)."""
    sections = "ceilings,init,gan,pipeline,inference,upscale"
    flags.DEFINE_bool("quick", False, "Fewer repeats (1 warm-up, median of 3, timed calls of a "
                      "step stop after 10 s, 5 batches per pipeline repeat), the tiled upscale "
                      "stops after 20 s (its peak RSS so far is reported); unless given: native "
                      "--precisions only, the gan step of the first preset in its default update "
                      "only, --infer_sizes 128,256, --matmul_size 2048.")
    flags.DEFINE_string("output_json", None, "Writes every figure to this JSON file.")
    flags.DEFINE_list("sections", sections, f"Subset of {sections}.")
    flags.DEFINE_list("presets", list(PRESETS), "Recipes of the train steps (--quick: the gan step "
                      f"of {PRESETS[0]} only unless given).")
    flags.DEFINE_list("gan_updates", list(GAN_UPDATES), "Stage gan update modes to time (the "
                      f"first is reported as gan_step_ms; --quick: {GAN_UPDATES[0]} only unless "
                      "given).")
    flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"],
                      "Keras policies: float32, mixed_bfloat16, mixed_float16 (GPUs before 8.0). "
                      "With --quick and this flag not given, only the native ones are timed.")
    flags.DEFINE_integer("batch_size", 16, "Batch of the train steps and of the conv ceiling.")
    flags.DEFINE_integer("lr_patch", 24, "LR patch side of the train steps (HR is 4x).")
    flags.DEFINE_integer("matmul_size", 4096, "Side of the square matmul ceiling (--quick: 2048 "
                         "unless given).")
    flags.DEFINE_integer("conv_size", 96, "Spatial side of the conv ceiling.")
    flags.DEFINE_integer("conv_feat", 64, "Channels in and out of the conv ceiling.")
    flags.DEFINE_string("hr_dir", None, "Images of the Trainer and the pipeline (default: "
                        "../shared/data/SunHays80 beside the repository, else data/sample).")
    flags.DEFINE_string("infer_preset", "tensorlayer", "Generator of the inference and upscale "
                        "figures.")
    flags.DEFINE_list("infer_sizes", ["128", "512"], "LR input sides of the inference figures "
                      "(--quick: 128,256 unless given).")
    flags.DEFINE_integer("upscale_size", 2048, "LR side of the tiled upscale's input.")
    flags.DEFINE_integer("upscale_tile", None, "--tile of the upscale CLI (default: its own).")
    flags.DEFINE_float("upscale_timeout", None, "Stops the upscale after this many seconds "
                       "(default: none; 20 with --quick).")
    flags.DEFINE_integer("warmup", None, "Untimed calls before each measurement (default 2, "
                         "--quick 1).")
    flags.DEFINE_integer("repeats", None, "Timed calls whose median is reported (default 10, "
                         "--quick 3).")
    flags.DEFINE_list("jit_compile", ["off"], "Train steps without (off) and/or with (on) "
                      "XLA, the Trainer's --jit_compile: off, on or off,on.")
    flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF default).")
    flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF default).")


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        infer_sizes = tuple(int(s) for s in FLAGS.infer_sizes)
    except ValueError:
        common.fail(f"--infer_sizes must be integers, got {','.join(FLAGS.infer_sizes)!r}")
    switch = {"off": False, "on": True}
    if not FLAGS.jit_compile or not set(FLAGS.jit_compile) <= set(switch):
        common.fail(f"--jit_compile must be off, on or off,on, got {','.join(FLAGS.jit_compile)!r}")
    jit_compile = tuple(switch[v] for v in FLAGS.jit_compile)
    # Imported here so that --help and flag errors don't pay for TensorFlow's start-up.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from srgan_tf import bench  # pylint: disable=import-outside-toplevel

    try:
        config = bench.BenchConfig.create(
            quick=FLAGS.quick, sections=tuple(FLAGS.sections),
            presets=tuple(FLAGS.presets) if FLAGS["presets"].present else None,
            precisions=tuple(FLAGS.precisions) if FLAGS["precisions"].present else None,
            gan_updates=tuple(FLAGS.gan_updates) if FLAGS["gan_updates"].present else None,
            batch_size=FLAGS.batch_size,
            lr_patch=FLAGS.lr_patch,
            matmul_size=FLAGS.matmul_size if FLAGS["matmul_size"].present else None,
            conv_size=FLAGS.conv_size,
            conv_feat=FLAGS.conv_feat, hr_dir=FLAGS.hr_dir, infer_preset=FLAGS.infer_preset,
            infer_sizes=infer_sizes if FLAGS["infer_sizes"].present else None,
            upscale_size=FLAGS.upscale_size,
            upscale_tile=FLAGS.upscale_tile, upscale_timeout=FLAGS.upscale_timeout,
            warmup=FLAGS.warmup, repeats=FLAGS.repeats, jit_compile=jit_compile).validate()
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    # Runtime settings go before the first op; GPU memory grows on demand so that the upscale
    # subprocess finds memory left on the device.
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    logging.info("benchmark settings: %s", config)
    # Progress bars (keras.utils.Progbar writes to sys.stdout) go to stderr: stdout is the table.
    with contextlib.redirect_stdout(sys.stderr):
        results = bench.run_benchmark(config)
    print(bench.format_table(results), flush=True)
    if FLAGS.output_json:
        common.write_json(results, FLAGS.output_json)


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
