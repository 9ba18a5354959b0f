"""`python -m srgan_tf.upscale IN... --output_dir DIR` (or `srgan-upscale`): x4 upscaling of images.

IN is a file, a folder (its images) or a glob pattern. Each output is DIR/<stem><suffix>.<ext>
(DIR/photo_x4.png by default); an existing output is skipped unless --overwrite is given.
  python -m srgan_tf.upscale photos/ --output_dir out --checkpoint_dir runs/x
  python -m srgan_tf.upscale big.jpg --output_dir out --model generator.keras --tile 96
"""

import os
import sys

from absl import flags, logging

from srgan_tf import image_files
from srgan_tf.cli import common
from srgan_tf.config import PRECISIONS

FLAGS = flags.FLAGS


def define_flags():
    """Defines the upscaling flags (--output_dir is required; the model defaults to srresnet)."""
    flags.DEFINE_string("output_dir", None, "Folder for the outputs (created if missing).")
    flags.DEFINE_string("checkpoint_dir", None, "Training run directory (latest stage is used).")
    flags.DEFINE_string("model", None, "A generator .keras file, a SavedModel directory, or a "
                        "shipped model: srresnet (the default when no model is given), srgan or "
                        "srresnet-real (for JPEG-compressed, noisy or blurred photos).")
    flags.DEFINE_enum("precision", "auto", list(PRECISIONS),
                      "Inference precision; auto: bf16 where the hardware runs it natively.")
    flags.DEFINE_string("saved_model", None, "A SavedModel directory written by export.py.")
    flags.DEFINE_integer("tile", None, "LR side of the tiles the model runs on, overlap included; "
                         "memory grows with its square (default: the whole image when it has at "
                         "most srgan_tf.upscale.WHOLE_IMAGE_PIXELS, 384 x 384, else tiles of "
                         "srgan_tf.upscale.DEFAULT_TILE, 192; 0: always the whole image).")
    flags.DEFINE_integer("tile_overlap", None,
                         "LR pixels of context on each side of a tile (default: the generator's "
                         "receptive radius, which makes tiling exact; 40 if unknown).")
    flags.DEFINE_enum("ext", "auto", list(image_files.EXTS),
                      "Output format: auto keeps the input's family (JPEG -> jpeg, WebP -> webp, "
                      "others -> png); png is written as a stream.")
    flags.DEFINE_string("suffix", image_files.DEFAULT_SUFFIX,
                        "Added to the input's name: photo.png -> photo<suffix>.png. Files named "
                        "*<suffix>.<ext> that this tool wrote are not taken as inputs from a "
                        "folder or pattern.")
    flags.DEFINE_bool("overwrite", False, "Replace existing outputs (default: skip them, one "
                      "line each).")
    flags.DEFINE_integer("max_input_pixels", image_files.DEFAULT_MAX_INPUT_PIXELS,
                         "Largest input in pixels (width x height), read from the header before "
                         "decoding; larger inputs are refused. 0: no limit.")


def _check_flags(inputs):
    """Fails with one line on the first bad flag or path (before TensorFlow is imported)."""
    if not inputs:
        common.fail("give at least one input image, folder or glob pattern")
    if not FLAGS.output_dir:
        common.fail("--output_dir is required")
    if FLAGS.tile is not None and FLAGS.tile < 0:
        common.fail(f"--tile must be >= 0 (0: whole image), got {FLAGS.tile}")
    if FLAGS.tile_overlap is not None and FLAGS.tile_overlap < 0:
        common.fail(f"--tile_overlap must be >= 0, got {FLAGS.tile_overlap}")
    if FLAGS.max_input_pixels < 0:
        common.fail(f"--max_input_pixels must be >= 0 (0: no limit), got {FLAGS.max_input_pixels}")
    if os.sep in FLAGS.suffix or (os.altsep and os.altsep in FLAGS.suffix):
        common.fail(f"--suffix must be a name part without a folder separator, got "
                    f"{FLAGS.suffix!r}")
    if os.path.exists(FLAGS.output_dir) and not os.path.isdir(FLAGS.output_dir):
        common.fail(f"--output_dir {FLAGS.output_dir} exists and is not a folder")
    for flag in ("checkpoint_dir", "saved_model"):
        if FLAGS[flag].value and not os.path.exists(FLAGS[flag].value):
            common.fail(f"--{flag} {FLAGS[flag].value} does not exist")


def plan(paths):
    """Pairs inputs with outputs, leaving out those that can't or needn't be upscaled.

    Returns:
      (jobs, sizes, failures, skipped): [(input, output, format)], their (width, height) from
      the header (None when unreadable), the number of inputs refused with an error, and the
      number skipped because their output exists.
    """
    failures = skipped = 0
    inputs_real = {os.path.realpath(p) for p in paths}
    jobs, sizes, claimed = [], [], {}
    for path in paths:
        image_format = image_files.output_format(path, FLAGS.ext)
        out = image_files.output_path(path, FLAGS.output_dir, image_format, FLAGS.suffix)
        size = image_files.image_size(path)
        if os.path.realpath(out) in inputs_real:
            logging.error("%s: skipped, its output %s is one of the inputs", path, out)
            failures += 1
        elif os.path.realpath(out) in claimed:
            logging.error("%s: skipped, %s already writes %s (use --suffix or --ext)", path,
                          claimed[os.path.realpath(out)], out)
            failures += 1
        elif not FLAGS.overwrite and os.path.lexists(out):
            logging.info("%s: skipped, %s exists (--overwrite replaces it)", path, out)
            skipped += 1
        else:
            try:
                if size is not None:
                    image_files.check_pixels(path, size, FLAGS.max_input_pixels)
            except ValueError as e:
                logging.error("%s", e)
                failures += 1
                continue
            claimed[os.path.realpath(out)] = path
            jobs.append((path, out, image_format))
            sizes.append(size)
    return jobs, sizes, failures, skipped


def main(argv):
    inputs = argv[1:]
    _check_flags(inputs)
    paths, problems = image_files.list_inputs(inputs, FLAGS.suffix)
    for problem in problems:
        logging.error("%s", problem)
    if not paths:
        common.fail(f"no input image found in {' '.join(inputs)}")
    jobs, sizes, failures, skipped = plan(paths)
    failures += len(problems)
    written = 0
    if jobs:
        written, failed = _upscale(jobs, sizes)
        failures += failed
    print(f"upscaled {written} of {written + failures + skipped} inputs into {FLAGS.output_dir}"
          + (f"; {skipped} skipped, their outputs exist (--overwrite replaces them)"
             if skipped else "")
          + (f"; {failures} failed (see the errors above)" if failures else ""))
    if failures:
        sys.exit(common.USAGE_EXIT_CODE)


def _upscale(jobs, sizes):
    """Loads the model and upscales the planned jobs; returns (written, failed)."""
    # Imported here so that --help, flag errors and a run with nothing to do skip TensorFlow.
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from srgan_tf import precision, upscale  # pylint: disable=import-outside-toplevel
    from srgan_tf.loading import DEFAULT_MODEL  # pylint: disable=import-outside-toplevel

    precision.set_precision(FLAGS.precision)  # before the model is built: layers take the policy
    tile = "auto" if FLAGS.tile is None else FLAGS.tile
    # --max_input_pixels, read from each header, is the limit instead of PIL's.
    Image.MAX_IMAGE_PIXELS = None
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
        upscale.check_tiling(upscale.DEFAULT_TILE if tile == "auto" else tile, overlap)
    except ValueError as e:
        common.fail(f"{e} (the overlap defaults to the model's receptive radius)")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    logging.info("upscaling %d images into %s: tile %s, overlap %d, --ext %s", len(jobs),
                 FLAGS.output_dir, tile, overlap, FLAGS.ext)

    def tiles(size):
        width, height = size
        return upscale.count_tiles(height, width, upscale.resolve_tile(tile, height, width),
                                   overlap)
    total = sum(tiles(size) for size in sizes if size) or 1
    progress = common.Progress(total, "tile")
    written = failed = 0
    for (path, out, image_format), size in zip(jobs, sizes):
        before = progress.done
        try:
            info = upscale.upscale_file(sr_fn, path, out, tile, overlap, image_format,
                                        progress.step, FLAGS.max_input_pixels, FLAGS.overwrite)
        except (ValueError, OSError) as e:
            logging.error("%s", e)
            failed += 1
            if size:  # keep the count right for the tiles the failed file would have used
                progress.update(before + tiles(size))
            continue
        written += 1
        logging.info("wrote %s (%d x %d -> %d x %d %s)", out, *info["input_size"],
                     *info["output_size"], info["mode"])
    progress.finish()
    return written, failed


def run():
    """Console-script entry point (`srgan-upscale`)."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
