"""`python -m srgan_tf.gpu_check` (scripts/gpu_check.sh): a prepared check of a GPU machine.

Prints the device; trains stage init for 200 steps on data/sample (the loss must fall); exports
the run and calls the SavedModel once; runs `python -m srgan_tf.bench --sections pipeline`; times
the init and gan steps of both presets in float32, mixed_bfloat16 and mixed_float16, without and
with --jit_compile, until --budget_minutes. Writes everything to one JSON file (--output) and prints
its path. Without a GPU it runs on the CPU at small shapes and says so.
  python -m srgan_tf.gpu_check --output gpu_check.json
"""

import sys

from absl import flags

from srgan_tf.cli import common

FLAGS = flags.FLAGS


def define_flags():
    """Defines the check's flags (all optional)."""
    flags.DEFINE_string("output", "gpu_check.json", "The JSON file written (replaced if present).")
    flags.DEFINE_string("work_dir", None, "Keep the training run and export here (default: a "
                        "temporary folder, removed).")
    flags.DEFINE_integer("train_steps", 200, "Steps of the stage-init training run.")
    flags.DEFINE_float("budget_minutes", 7.5, "No step timing starts after this many minutes.")
    flags.DEFINE_list("stages", ["init", "gan"], "Train steps timed.")
    flags.DEFINE_list("presets", ["tensorlayer", "paper"], "Recipes of the timed steps.")
    flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16", "mixed_float16"],
                      "Keras policies of the timed steps.")


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so that --help and flag errors don't pay for TensorFlow's start-up.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from srgan_tf import gpu_check  # pylint: disable=import-outside-toplevel

    # GPU memory grows on demand: the training, export and pipeline processes need some too.
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    config = gpu_check.CheckConfig(
        output=FLAGS.output, work_dir=FLAGS.work_dir, train_steps=FLAGS.train_steps,
        budget_minutes=FLAGS.budget_minutes, stages=tuple(FLAGS.stages),
        presets=tuple(FLAGS.presets), precisions=tuple(FLAGS.precisions))
    try:
        config.validate()
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    results = gpu_check.run_check(config)
    print(gpu_check.format_report(results), flush=True)
    print(f"wrote {FLAGS.output}", flush=True)
    sys.exit(0 if results["ok"] else 1)


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
