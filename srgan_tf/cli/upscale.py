"""`python -m srgan_tf.upscale IN... --output_dir DIR` (or `srgan-upscale`): x4 upscaling of images.

IN is a file, a folder (its images) or a glob pattern. Each output is DIR/<stem>_x4.png.
  python -m srgan_tf.upscale photos/ --output_dir out --checkpoint_dir runs/x
  python -m srgan_tf.upscale big.jpg --output_dir out --model generator.keras --tile 96
"""

import os
import sys

from absl import flags, logging

from srgan_tf.cli import common
from srgan_tf.config import PRECISIONS
from srgan_tf.loading import DEFAULT_MODEL

FLAGS = flags.FLAGS


def define_flags():
    """Defines the upscaling flags (--output_dir and one model source are required)."""
    flags.DEFINE_string("output_dir", None, "Folder for the outputs (created if missing).")
    flags.DEFINE_string("checkpoint_dir", None, "Training run directory (latest stage is used).")
    flags.DEFINE_string("model", None, "A generator .keras file, a SavedModel directory, or a "
                        "shipped model: srresnet (the default when no model is given) or srgan.")
    flags.DEFINE_enum("precision", "auto", list(PRECISIONS),
                      "Inference precision; auto: bf16 where the hardware runs it natively.")
    flags.DEFINE_string("saved_model", None, "A SavedModel directory written by export.py.")
    flags.DEFINE_integer("tile", None, "LR side of the tiles the model runs on, overlap included; "
                         "memory grows with its square (default: srgan_tf.upscale.DEFAULT_TILE, "
                         "192; 0: whole image at once).")
    flags.DEFINE_integer("tile_overlap", None,
                         "LR pixels of context on each side of a tile (default: the generator's "
                         "receptive radius, which makes tiling exact; 40 if unknown).")
    flags.DEFINE_string("format", "png", "Output format: png (streamed), jpeg, webp, tiff or bmp.")


def main(argv):
    inputs = argv[1:]
    if not inputs:
        common.fail("give at least one input image, folder or glob pattern")
    if not FLAGS.output_dir:
        common.fail("--output_dir is required")
    if FLAGS.tile is not None and FLAGS.tile < 0:
        common.fail(f"--tile must be >= 0 (0: whole image), got {FLAGS.tile}")
    if FLAGS.tile_overlap is not None and FLAGS.tile_overlap < 0:
        common.fail(f"--tile_overlap must be >= 0, got {FLAGS.tile_overlap}")
    if os.path.exists(FLAGS.output_dir) and not os.path.isdir(FLAGS.output_dir):
        common.fail(f"--output_dir {FLAGS.output_dir} exists and is not a folder")
    # Imported here so that --help and flag errors don't pay for TensorFlow's start-up.
    import keras  # pylint: disable=import-outside-toplevel
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from srgan_tf import upscale  # pylint: disable=import-outside-toplevel
    from srgan_tf import precision  # pylint: disable=import-outside-toplevel

    precision.set_precision(FLAGS.precision)  # before the model is built: layers take the policy

    if FLAGS.format not in upscale.FORMATS:
        common.fail(f"--format must be one of {', '.join(upscale.FORMATS)}, "
                    f"got {FLAGS.format!r}")
    tile = upscale.DEFAULT_TILE if FLAGS.tile is None else FLAGS.tile
    Image.MAX_IMAGE_PIXELS = None  # the user's own files, of any size: no decompression-bomb cap
    paths, problems = upscale.list_inputs(inputs)
    for problem in problems:
        logging.error("%s", problem)
    if not paths:
        common.fail(f"no input image found in {' '.join(inputs)}")
    try:
        model = FLAGS.model
        if not (FLAGS.checkpoint_dir or model or FLAGS.saved_model):
            model = DEFAULT_MODEL  # the shipped SRResNet (weights/srresnet_x4.keras)
        sr_fn, overlap = upscale.load_resolver(FLAGS.checkpoint_dir, model, FLAGS.saved_model)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    if FLAGS.tile_overlap is not None:
        overlap = FLAGS.tile_overlap
    try:
        upscale.check_tiling(tile, overlap)
    except ValueError as e:
        common.fail(f"{e} (the overlap defaults to the model's receptive radius)")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    logging.info("upscaling %d images into %s: tile %d, overlap %d, format %s", len(paths),
                 FLAGS.output_dir, tile, overlap, FLAGS.format)

    failures = len(problems)
    inputs_real = {os.path.realpath(p) for p in paths}
    jobs, claimed = [], {}
    for path in paths:
        out = upscale.output_path(path, FLAGS.output_dir, FLAGS.format)
        if os.path.realpath(out) in inputs_real:
            logging.error("%s: skipped, its output %s is one of the inputs", path, out)
            failures += 1
        elif os.path.realpath(out) in claimed:
            logging.error("%s: skipped, %s already writes %s", path, claimed[os.path.realpath(out)],
                          out)
            failures += 1
        else:
            claimed[os.path.realpath(out)] = path
            jobs.append((path, out))

    sizes = [upscale.image_size(path) for path, _ in jobs]
    total = sum(upscale.count_tiles(*size, tile, overlap) for size in sizes if size) or 1
    progbar = keras.utils.Progbar(total, unit_name="tile")
    done = [0]

    def progress():
        done[0] += 1
        progbar.update(min(done[0], total))

    written = 0
    for (path, out), size in zip(jobs, sizes):
        before = done[0]
        try:
            info = upscale.upscale_file(sr_fn, path, out, tile, overlap, FLAGS.format, progress)
        except (ValueError, OSError) as e:
            logging.error("%s", e)
            failures += 1
            if size:  # keep the bar's count right for the tiles the failed file would have used
                done[0] = before + upscale.count_tiles(*size, tile, overlap) - 1
                progress()
            continue
        written += 1
        logging.info("wrote %s (%dx%d -> %dx%d %s)", out, *info["input_size"][::-1],
                     *info["output_size"][::-1], info["mode"])
    print(f"upscaled {written} of {written + failures} inputs into {FLAGS.output_dir}"
          + (f"; {failures} failed (see the errors above)" if failures else ""))
    if failures:
        sys.exit(common.USAGE_EXIT_CODE)


def run():
    """Console-script entry point (`srgan-upscale`)."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
