"""Image files on disk, handled without TensorFlow: inputs, output names, sizes, metadata.

Everything here reads at most an image's header, so the upscale CLI can find its inputs, name
its outputs and refuse oversized images before TensorFlow is imported or a pixel is decoded.

Outputs of `srgan_tf.upscale` are recognised by two marks together: the file name ends with the
output suffix just before the extension (`photo_x4.png` for `--suffix _x4`), and the file's EXIF
Software tag (0x0131) starts with SOFTWARE, which every output gets (PNG: an eXIf chunk before
the pixels; JPEG, WebP, TIFF: their EXIF block). A photo of the user's named `*_x4.jpg` lacks
the tag and stays an input; an output renamed away from the suffix is an input again.
"""

import glob
import os

from absl import logging
from PIL import Image

from srgan_tf.config import IMAGE_EXTENSIONS

DEFAULT_SUFFIX = "_x4"
# Largest input (LR pixels) upscaled by default: 16 megapixels, e.g. 4000 x 4000 -> 16000 x 16000.
# Below PIL's own decompression-bomb limit (Image.MAX_IMAGE_PIXELS, about 89 megapixels).
DEFAULT_MAX_INPUT_PIXELS = 16_000_000
SOFTWARE = "srgan_tf upscale"  # EXIF Software value that marks an output
EXIF_SOFTWARE, EXIF_ORIENTATION = 0x0131, 0x0112
# Output format -> (PIL format, file extension).
FORMATS = {"png": ("PNG", ".png"), "jpeg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp"),
           "tiff": ("TIFF", ".tif"), "bmp": ("BMP", ".bmp")}
EXTS = ("auto", "png", "jpeg", "webp")  # values of the CLI's --ext
# --ext auto: the output keeps the input's format family; lossless inputs (PNG, BMP, TIFF,
# GIF) give PNG.
_AUTO_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def output_format(input_path, ext="auto"):
    """Returns the output format (a key of FORMATS) for `--ext` `ext` and an input file name."""
    if ext != "auto":
        return ext
    return _AUTO_FORMATS.get(os.path.splitext(input_path)[1].lower(), "png")


def output_path(input_path, output_dir, image_format="png", suffix=DEFAULT_SUFFIX):
    """Returns `output_dir`/<input stem><suffix>.<extension of `image_format`>."""
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return os.path.join(output_dir, f"{stem}{suffix}{FORMATS[image_format][1]}")


def image_size(path):
    """Returns (width, height) of an image file from its header, or None if it can't be read."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def check_pixels(path, size, max_pixels):
    """Raises ValueError naming the file, its W x H and the flag when it exceeds `max_pixels`.

    Args:
      path: the image file, for the message.
      size: (width, height) from the header.
      max_pixels: the limit; 0 or None means no limit.
    """
    width, height = size
    if max_pixels and width * height > max_pixels:
        raise ValueError(f"{path} is {width} x {height} = {width * height:,} pixels, above "
                         f"--max_input_pixels {max_pixels:,}: raise the flag to upscale it")


def _exif(image):
    """The EXIF of an opened image from its header (never decodes pixels); Image.Exif."""
    exif = Image.Exif()
    data = image.info.get("exif")
    if data:
        try:
            exif.load(data)
        except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError):
            return Image.Exif()
    elif image.format == "TIFF" and hasattr(image, "tag_v2"):
        exif[EXIF_SOFTWARE] = image.tag_v2.get(EXIF_SOFTWARE, "")
    return exif


def output_metadata(path):
    """Returns the metadata an output of `path` carries: its ICC profile and EXIF.

    The EXIF is the input's without its orientation (the pixels are written upright) and with
    the Software tag set to SOFTWARE, which marks the file as an output.

    Returns:
      dict: "icc_profile" (bytes or None), "exif" (bytes, "Exif\\0\\0" + TIFF data).
    """
    try:
        with Image.open(path) as image:
            icc = image.info.get("icc_profile") or None
            exif = _exif(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        icc, exif = None, Image.Exif()
    exif.pop(EXIF_ORIENTATION, None)
    exif[EXIF_SOFTWARE] = SOFTWARE
    return {"icc_profile": icc, "exif": exif.tobytes()}


def is_output(path, suffix=DEFAULT_SUFFIX):
    """True when `path` is an output of the upscaler: `*<suffix>.<ext>` with its Software tag."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if not suffix or not stem.endswith(suffix):
        return False
    try:
        with Image.open(path) as image:
            return str(_exif(image).get(EXIF_SOFTWARE, "")).startswith(SOFTWARE)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


def list_inputs(arguments, suffix=DEFAULT_SUFFIX):
    """Expands input arguments: files as given, folders to their images, glob patterns.

    Files found in a folder or by a pattern that are this tool's outputs (`is_output`) are left
    out, with one log line each; a file named explicitly is always taken.

    Args:
      arguments: list of paths, folders (images directly inside, sorted) or glob patterns.
      suffix: the output suffix (`--suffix`) outputs are recognised by.
    Returns:
      (paths, problems): the input files in order without repeats, and one message per
      argument that matched nothing.
    """
    paths, problems, seen = [], [], set()
    for argument in arguments:
        if os.path.isdir(argument):
            found = sorted(os.path.join(argument, name) for name in os.listdir(argument)
                           if name.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(argument, name)))
            if not found:
                problems.append(f"{argument}: no images ({', '.join(IMAGE_EXTENSIONS)}) in folder")
        elif os.path.isfile(argument):
            found = [argument]
        elif glob.has_magic(argument):
            found = sorted(p for p in glob.glob(argument) if os.path.isfile(p))
            if not found:
                problems.append(f"{argument}: no file matches")
        else:
            found = []
            problems.append(f"{argument}: no such file or folder")
        for path in found:
            if path != argument and is_output(path, suffix):
                logging.info("%s: not an input, it is an output of this tool (name *%s.<ext>, "
                             "EXIF Software '%s')", path, suffix, SOFTWARE)
                continue
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                paths.append(path)
    return paths, problems
