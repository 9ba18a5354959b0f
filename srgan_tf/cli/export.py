"""`python export.py`: export a trained generator for TF Serving (SavedModel), Keras and TFLite."""

from absl import flags, logging

from srgan_tf.cli import common

FLAGS = flags.FLAGS

# Kept in step with srgan_tf.serving, which is not imported here: --help and flag errors then
# skip TensorFlow's start-up.
_FORMATS = ("savedmodel", "keras", "tflite")
_OUTPUT_FORMATS = ("png", "jpeg")


def define_flags():
    """Defines the export flags (--export_dir and one of --checkpoint_dir / --model required)."""
    flags.DEFINE_string("checkpoint_dir", None,
                        "Training run directory RUN (latest checkpoint of RUN/gan, else RUN/init).")
    flags.DEFINE_string("model", None, "A generator saved as a .keras file (instead of a run), or a "
                        "shipped model: srresnet, srgan or srresnet-real.")
    flags.DEFINE_string("export_dir", None,
                        "Model base path for TF Serving; the export goes to EXPORT_DIR/<version>.")
    flags.DEFINE_integer("version", None,
                         "Version number (default: 1 + highest existing). Never overwritten.")
    flags.DEFINE_list("format", ["savedmodel"],
                      "What to write into the version directory: savedmodel (always), keras "
                      "(generator.keras), tflite (generator.tflite). Comma-separated.")
    flags.DEFINE_enum("output_format", "png", list(_OUTPUT_FORMATS),
                      "Encoding of upscale_image's sr_image_bytes: png (lossless) or jpeg "
                      "(smaller).")
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality 1..100 for --output_format jpeg.")
    flags.DEFINE_integer("max_input_pixels", 4_000_000,
                         "Largest accepted input (height x width, LR pixels); larger requests fail "
                         "with InvalidArgument.")
    flags.DEFINE_integer("tile_size", 256,
                         "Side of the LR tiles the generator runs on inside the graph "
                         "(bounds memory).")
    flags.DEFINE_integer("tile_overlap", None,
                         "Margin of each tile in LR pixels (default: the generator's receptive "
                         "radius, which leaves no seams).")
    flags.DEFINE_bool("warmup", False, "Write assets.extra/tf_serving_warmup_requests.")
    flags.DEFINE_string("model_name", "srgan", "Model name in the warm-up requests.")
    flags.DEFINE_integer("tflite_input_size", None,
                         "Fixed square input side of the TFLite model (default: dynamic H, W).")
    flags.DEFINE_bool("check", True,
                      "Reload every written model and compare it with the generator before the "
                      "version is published.")
    flags.mark_flags_as_required(["export_dir"])


def _validate_flags():
    """Raises ValueError naming the first bad flag."""
    if (FLAGS.checkpoint_dir is None) == (FLAGS.model is None):
        raise ValueError("give exactly one of --checkpoint_dir or --model")
    unknown = [f for f in FLAGS.format if f not in _FORMATS]
    if unknown or not FLAGS.format:
        raise ValueError(f"--format must be a comma-separated list of {', '.join(_FORMATS)}, "
                         f"got {','.join(FLAGS.format)!r}")
    if FLAGS.version is not None and FLAGS.version <= 0:
        raise ValueError(f"--version must be a positive integer, got {FLAGS.version}")


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        _validate_flags()
    except ValueError as e:
        common.fail(str(e))
    from srgan_tf import loading, serving  # pylint: disable=import-outside-toplevel

    config = serving.ServingConfig(
        tile_size=FLAGS.tile_size, tile_overlap=FLAGS.tile_overlap,
        max_input_pixels=FLAGS.max_input_pixels, output_format=FLAGS.output_format,
        jpeg_quality=FLAGS.jpeg_quality)
    try:
        config.validate()
    except ValueError as e:
        common.fail(str(e))
    try:
        source = FLAGS.checkpoint_dir or FLAGS.model
        generator = loading.load_generator(source)
        logging.info("loaded generator from %s; export config %s, formats %s", source, config,
                     ",".join(FLAGS.format))
        path = serving.export(generator, FLAGS.export_dir, version=FLAGS.version, config=config,
                              formats=tuple(FLAGS.format), warmup=FLAGS.warmup,
                              model_name=FLAGS.model_name,
                              tflite_input_size=FLAGS.tflite_input_size, check=FLAGS.check)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    print(path)


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)
