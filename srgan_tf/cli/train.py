"""`python train.py`: train stage init (SRResNet on MSE) or stage gan (SRGAN)."""

import sys

from absl import flags, logging

from srgan_tf.cli import common
from srgan_tf.config import (AUGMENTS, FILE_CROPS_PER_IMAGE, GAN_UPDATES,
                             PRECISIONS, PRESETS, STAGES, STRATEGIES, Recipe, TrainConfig)

FLAGS = flags.FLAGS


def define_flags():
    """Defines the training flags (all optional except --stage and --checkpoint_dir)."""
    flags.DEFINE_enum("stage", None, list(STAGES), "init: generator on MSE; gan: adversarial.")
    flags.DEFINE_string("checkpoint_dir", None, "Run directory; stages live in RUN/init and RUN/gan.")
    flags.DEFINE_string("hr_dir", None, "Folder of HR training images (searched recursively).")
    flags.DEFINE_string("tfds", None, "tensorflow-datasets DIV2K config, e.g. div2k/bicubic_x4.")
    flags.DEFINE_string("store", None, "Decode-once store made by python -m srgan_tf.prepare "
                        "(instead of --hr_dir / --tfds).")
    flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir (default ~/tensorflow_datasets).")
    flags.DEFINE_string("preset", "tensorlayer", f"Recipe: {' or '.join(PRESETS)}.")
    flags.DEFINE_integer("steps", None, "Total steps of the stage (overrides --epochs and the "
                         "preset's schedule).")
    flags.DEFINE_integer("epochs", None, "Total epochs of the stage (default: the preset's "
                         "schedule; tensorlayer: init 100, gan 2000 epochs; paper: init 10^6, "
                         "gan 2x10^5 steps).")
    flags.DEFINE_integer("batch_size", None, "Global batch size (recipe: 16).")
    flags.DEFINE_integer("crop_size", None, "HR crop side, a multiple of 4 (tensorlayer 384, paper 96).")
    flags.DEFINE_float("learning_rate", None, "Adam learning rate (recipe: 1e-4).")
    flags.DEFINE_float("bn_momentum", None, "BatchNorm momentum of both networks (recipe: 0.9).")
    flags.DEFINE_integer("vgg_input_size", None, "Side VGG19 sees (tensorlayer: the crop resized "
                         "to 224; paper: the crop itself); 0 = the crop itself.")
    flags.DEFINE_integer("decay_every", None, "gan stage: epochs between lr x0.1 decays "
                         "(tensorlayer: 1000 epochs; replaces the paper preset's 10^5 steps).")
    flags.DEFINE_enum("gan_update", None, list(GAN_UPDATES),
                      "gan stage: alternating (D update, then G update through the updated D, "
                      "as both recipes; the default) or shared (both from one forward pass).")
    flags.DEFINE_string("vgg_weights", "imagenet",
                        "VGG19 weights: imagenet, none (random: tests only) or a local .h5 file.")
    flags.DEFINE_integer("seed", 0, "Seed of weights init and of the data stream.")
    flags.DEFINE_enum("augment", None, list(AUGMENTS), "Augmentation of each crop: none, flip "
                      "(horizontal) or flip_rot90 (and 90-degree rotations). Default: the "
                      "preset's (tensorlayer none, paper flip_rot90).")
    flags.DEFINE_bool("cache", False, "Keep decoded training images in RAM (decoded in parallel).")
    flags.DEFINE_integer("crops_per_image", None, "Crops drawn from each image read (default: "
                         f"{FILE_CROPS_PER_IMAGE} from image files, 1 from --store or --cache).")
    flags.DEFINE_string("degradation", "bicubic", "LR patches: bicubic x4 (the recipe), realistic "
                        "(random blur, x4 kernel, noise and JPEG; for real photos), or bicubic then "
                        "one fixed jpeg:QUALITY, blur:SIGMA or noise:SIGMA (as evaluate's).")
    flags.DEFINE_bool("icnr", False, "ICNR init of the sub-pixel convs (against checkerboard "
                      "artifacts; not part of either recipe).")
    flags.DEFINE_bool("gan_freeze_bn", False, "Stage gan: keep the generator's BatchNorm "
                      "statistics of stage init (inference mode) instead of batch statistics.")
    flags.DEFINE_bool("init_freeze_bn", False, "Stage init: keep the generator's BatchNorm "
                      "statistics (inference mode) instead of batch statistics; for fine-tuning "
                      "with --init_from (needs trained statistics).")
    flags.DEFINE_bool("from_scratch", False, "Allow --stage gan without an init checkpoint.")
    flags.DEFINE_string("init_from", None, "Fine-tune: start the stage's generator from a shipped "
                        "model (srresnet, srgan, srresnet-real) or a generator .keras file of the same --preset.")
    flags.DEFINE_string("init_discriminator", None, "Fine-tune, --stage gan: start the "
                        "discriminator from a discriminator .keras file (RUN/gan/discriminator.keras).")
    flags.DEFINE_bool("deterministic", False, "Enable TF op determinism (slower on GPU).")
    flags.DEFINE_bool("jit_compile", False, "Compile the train step with XLA (measure first: "
                      "see docs/training.md).")
    flags.DEFINE_enum("precision", "auto", list(PRECISIONS),
                      "auto: bf16 where native (AMX/AVX512-BF16 CPUs, GPUs >= 8.0), float16 on "
                      "older GPUs, else float32.")
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES),
                      "tf.distribute strategy: default (one device), mirrored (all local GPUs or "
                      "--devices), multi_worker (cluster from TF_CONFIG), tpu (see --tpu).")
    flags.DEFINE_list("devices", None, "--strategy mirrored: devices, e.g. /gpu:0,/gpu:1.")
    flags.DEFINE_string("tpu", None, "--strategy tpu: TPU name or grpc:// address; 'local' on a "
                        "Cloud TPU VM (default: TPUClusterResolver's, e.g. $TPU_NAME).")
    # --log_dir (TensorBoard logs, default RUN/logs/<stage>) is absl.logging's own flag, reused.
    flags.DEFINE_integer("save_every", 500, "Steps between checkpoints.")
    flags.DEFINE_integer("summary_every", 50, "Steps between TensorBoard scalars.")
    flags.DEFINE_integer("image_every", 500, "Steps between TensorBoard image summaries.")
    flags.DEFINE_integer("max_to_keep", 3, "Checkpoints kept per stage.")
    flags.DEFINE_integer("debug_nan_step", None,
                         "Test hook: make this step's batch NaN (the run must stop cleanly).")
    flags.DEFINE_float("max_minutes", None,
                       "Wall-clock training budget of the stage, summed over reruns.")
    flags.mark_flags_as_required(["stage", "checkpoint_dir"])


def config_from_flags():
    """Builds the TrainConfig of the parsed flags (raises ValueError on a bad value)."""
    recipe = Recipe.from_preset(FLAGS.preset, batch_size=FLAGS.batch_size,
                                crop_size=FLAGS.crop_size, learning_rate=FLAGS.learning_rate,
                                decay_every=FLAGS.decay_every, gan_update=FLAGS.gan_update,
                                icnr=FLAGS.icnr, gan_freeze_bn=FLAGS.gan_freeze_bn,
                                init_freeze_bn=FLAGS.init_freeze_bn,
                                augment=FLAGS.augment, bn_momentum=FLAGS.bn_momentum,
                                vgg_input_size=FLAGS.vgg_input_size)
    return TrainConfig(
        stage=FLAGS.stage, checkpoint_dir=FLAGS.checkpoint_dir, hr_dir=FLAGS.hr_dir,
        tfds=FLAGS.tfds, tfds_data_dir=FLAGS.tfds_data_dir, store=FLAGS.store, recipe=recipe,
        steps=FLAGS.steps, epochs=FLAGS.epochs, seed=FLAGS.seed, augment=FLAGS.augment,
        cache=FLAGS.cache, crops_per_image=FLAGS.crops_per_image,
        degradation=FLAGS.degradation,
        vgg_weights=FLAGS.vgg_weights, log_dir=FLAGS.log_dir or None, save_every=FLAGS.save_every,
        summary_every=FLAGS.summary_every, image_every=FLAGS.image_every,
        max_to_keep=FLAGS.max_to_keep, max_minutes=FLAGS.max_minutes,
        debug_nan_step=FLAGS.debug_nan_step, from_scratch=FLAGS.from_scratch,
        init_from=FLAGS.init_from, init_discriminator=FLAGS.init_discriminator,
        deterministic=FLAGS.deterministic, precision=FLAGS.precision, strategy=FLAGS.strategy,
        devices=tuple(FLAGS.devices) if FLAGS.devices is not None else None, tpu=FLAGS.tpu,
        jit_compile=FLAGS.jit_compile)


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = config_from_flags().validate()
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    # Imported here so that --help and flag errors don't pay for TensorFlow's start-up.
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from srgan_tf import distribute, precision, trainer  # pylint: disable=import-outside-toplevel

    try:
        # First: MultiWorkerMirroredStrategy must exist before TensorFlow initialises devices.
        strategy = distribute.make_strategy(config)
    except ValueError as e:
        common.fail(str(e))
    precision.set_precision(config.precision)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    logging.info("config:\n%s", config.to_json())
    try:
        trainer.Trainer(config, strategy=strategy).train()
    except (trainer.NonFiniteLossError, trainer.CheckpointWriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except trainer.Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)
