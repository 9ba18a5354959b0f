"""`python -m srgan_tf.reference`: the reference CPU run (train both stages on a budget, evaluate)."""

import os

from absl import flags

from srgan_tf.cli import common
from srgan_tf.config import PRECISIONS, PRESETS, Recipe

FLAGS = flags.FLAGS
_SHARED = os.path.join("..", "shared", "data")


def define_flags():
    flags.DEFINE_string("hr_dir", os.path.join(_SHARED, "SunHays80"), "Training photos.")
    flags.DEFINE_string("run_dir", "runs/reference", "Where checkpoints and results go.")
    flags.DEFINE_multi_string("eval_dir", [os.path.join(_SHARED, s) for s in
                                           ("Set5", "Set14", "BSD68")], "Benchmark folders.")
    flags.DEFINE_float("init_minutes", 75, "Training budget of stage init (wall clock).")
    flags.DEFINE_float("gan_minutes", 30, "Training budget of stage gan (wall clock).")
    flags.DEFINE_string("preset", "tensorlayer", f"Recipe: {' or '.join(PRESETS)}.")
    flags.DEFINE_integer("batch_size", 16, "Batch size.")
    flags.DEFINE_integer("crop_size", 96, "HR crop side.")
    flags.DEFINE_float("init_learning_rate", 2e-4, "Adam learning rate of stage init.")
    flags.DEFINE_float("gan_learning_rate", 1e-4, "Adam learning rate of stage gan.")
    flags.DEFINE_float("bn_momentum", None, "BatchNorm momentum (recipe: 0.9).")
    flags.DEFINE_string("vgg_weights", "imagenet", "imagenet, none or a local .h5 file.")
    flags.DEFINE_integer("vgg_input_size", None,
                         "Resize to this side before VGG19 (tensorlayer: 224); 0 = the HR crop.")
    flags.DEFINE_integer("gan_batch_size", None, "Batch size of stage gan (default --batch_size).")
    flags.DEFINE_bool("gan_freeze_bn", False, "Stage gan: keep the generator's BatchNorm "
                      "statistics of stage init instead of batch statistics.")
    flags.DEFINE_bool("icnr", False, "ICNR init of the sub-pixel convs (against checkerboard "
                      "artifacts; Aitken et al. 2017).")
    flags.DEFINE_enum("precision", "auto", list(PRECISIONS), "Compute precision.")
    flags.DEFINE_integer("eval_every", 250, "Steps between validations (and checkpoints).")
    flags.DEFINE_integer("seed", 0, "Seed.")


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from srgan_tf import reference  # pylint: disable=import-outside-toplevel
    try:
        recipe = Recipe.from_preset(FLAGS.preset, batch_size=FLAGS.batch_size,
                                    crop_size=FLAGS.crop_size, bn_momentum=FLAGS.bn_momentum,
                                    vgg_input_size=FLAGS.vgg_input_size, icnr=FLAGS.icnr,
                                    gan_freeze_bn=FLAGS.gan_freeze_bn)
        for path in [FLAGS.hr_dir, *FLAGS.eval_dir]:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"{path} is not a directory")
        config = reference.ReferenceConfig(
            hr_dir=FLAGS.hr_dir, run_dir=FLAGS.run_dir, eval_dirs=tuple(FLAGS.eval_dir),
            recipe=recipe, init_minutes=FLAGS.init_minutes, gan_minutes=FLAGS.gan_minutes,
            init_learning_rate=FLAGS.init_learning_rate,
            gan_learning_rate=FLAGS.gan_learning_rate, vgg_weights=FLAGS.vgg_weights,
            seed=FLAGS.seed, eval_every=FLAGS.eval_every, save_every=FLAGS.eval_every,
            precision=FLAGS.precision, gan_batch_size=FLAGS.gan_batch_size)
        reference.run(config)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))


def run():
    define_flags()
    common.run(main, __name__)
