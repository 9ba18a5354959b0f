"""Image files in and out of the upscaler: decoding with alpha and EXIF, writing any format.

`upscale_file` reads one image, upscales it band by band (`tiling.upscale_bands`) and writes it
under a temporary name (PNG streamed by `png.PngStreamWriter`), retrying with smaller tiles
when TensorFlow runs out of memory.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, ImageOps

from srgan_tf import errors, files
from srgan_tf.config import IMAGE_EXTENSIONS, SCALE
from srgan_tf.image_files import (DEFAULT_MAX_INPUT_PIXELS, DEFAULT_SUFFIX, FORMATS,  # noqa: F401
                                  check_pixels, image_size, list_inputs, output_metadata,
                                  output_path)
from srgan_tf.imaging import pil_to_rgb_array
from srgan_tf.upscale.png import PngStreamWriter
from srgan_tf.upscale.tiling import DEFAULT_OVERLAP, check_tiling, resolve_tile, upscale_bands

MIN_CORE = 8  # smallest tile core the out-of-memory fallback shrinks to (LR pixels)
INPUT_EXTENSIONS = IMAGE_EXTENSIONS
_NO_ALPHA_FORMATS = ("jpeg", "bmp")  # BMP can hold alpha, but PIL and most viewers read it as RGB
_NO_GRAY_FORMATS = ("webp",)  # PIL writes grayscale WebP as RGB
_GRAY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


def read_image(path, max_pixels=None):
    """Reads any image PIL decodes, honouring EXIF orientation, and keeps its alpha.

    Grayscale (including 16-bit) is replicated to RGB for the model; palette and CMYK are
    converted to RGB; alpha (RGBA, LA, PA, palette or colour-key transparency) is returned apart.

    Args:
      path: image file.
      max_pixels: largest accepted width x height, checked from the header before any pixel
        is decoded; 0 or None: no limit.
    Returns:
      (rgb, alpha, gray): uint8 [H, W, 3]; uint8 [H, W] or None; True when the file is grayscale.
    Raises:
      ValueError: naming the file, when it cannot be decoded or is above `max_pixels`.
    """
    size = image_size(path)
    if size is not None:
        check_pixels(path, size, max_pixels)
    try:
        with Image.open(path) as image:
            check_pixels(path, image.size, max_pixels)  # the header again, in case it changed
            image.load()
            image = ImageOps.exif_transpose(image)
            gray = image.mode in _GRAY_MODES
            alpha = None
            if "A" in image.getbands():
                alpha = np.asarray(image.getchannel("A"), dtype=np.uint8)
            elif "transparency" in image.info and image.mode in ("P", "L", "RGB"):
                alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.uint8)
            return pil_to_rgb_array(image), alpha, gray
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode {path}: {e}") from None


def _gray_u8(rgb_u8):
    """ITU-R 601-2 luma (PIL's RGB->L): uint8 [..., 3] -> uint8 [...]."""
    luma = rgb_u8.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)


def _output_pixels(band, gray):
    """Turns an RGB(A) band into the output mode's channels (L / LA for grayscale inputs)."""
    if not gray:
        return band
    luma = _gray_u8(band[..., :3])[..., None]
    return np.concatenate([luma, band[..., 3:]], axis=-1) if band.shape[-1] == 4 else luma


def output_mode(gray, alpha, image_format):
    """The PIL mode an output is written in (L, LA, RGB, RGBA) for the input's gray / alpha."""
    mode = "L" if gray and image_format not in _NO_GRAY_FORMATS else "RGB"
    return mode + ("A" if alpha and image_format not in _NO_ALPHA_FORMATS else "")


def _write_image(path, bands, width, height, channels, image_format, metadata=None):
    """Writes the bands to `path`: streamed for PNG, assembled in memory for other formats.

    `metadata` ({"icc_profile", "exif"}, see `image_files.output_metadata`) is written into
    every format that holds it (all but BMP).
    """
    metadata = {k: v for k, v in (metadata or {}).items() if v}
    if image_format == "png":
        with PngStreamWriter(path, width, height, channels, **metadata) as writer:
            for _, band in bands:
                writer.write(band)
        return
    canvas = np.empty([height, width, channels], np.uint8)
    for row, band in bands:
        canvas[row:row + band.shape[0]] = band
    if image_format in _NO_ALPHA_FORMATS and channels in (2, 4):
        canvas = canvas[..., :channels - 1]
    image = Image.fromarray(canvas[..., 0] if canvas.shape[-1] == 1 else canvas)
    options = {"quality": 95} if image_format in ("jpeg", "webp") else {}
    if image_format == "bmp":
        metadata = {}
    image.save(path, format=FORMATS[image_format][0], **options, **metadata)


def upscale_file(sr_fn, input_path, out_path, tile="auto", overlap=DEFAULT_OVERLAP,
                 image_format="png", progress=None, max_pixels=DEFAULT_MAX_INPUT_PIXELS,
                 overwrite=False):
    """Upscales one image file x4 and writes it, never over the input.

    Grayscale inputs give grayscale output; alpha is upscaled with bicubic and the colour
    premultiplied by it (see `upscale_bands`). The output keeps the input's ICC profile and
    EXIF and carries the output mark (`image_files.output_metadata`). The file is written under
    a temporary name and renamed, so a failure leaves no partial file. When TensorFlow runs out
    of memory the tile side is halved (while it stays above 2 * overlap + MIN_CORE) and the
    image retried.

    Args:
      sr_fn: super-resolver, uint8 [h, w, 3] -> uint8 [4h, 4w, 3].
      input_path: image file (PNG, JPEG, BMP, WebP, TIFF...; any mode; EXIF orientation honoured).
      out_path: output file.
      tile: as for `upscale_bands`, or "auto" (`resolve_tile`: whole when the image fits the
        WHOLE_IMAGE_PIXELS budget, DEFAULT_TILE tiles above it).
      overlap, progress: as for `upscale_bands`.
      image_format: a key of FORMATS.
      max_pixels: largest input (width x height), checked from the header before decoding;
        0 or None: no limit.
      overwrite: replace an existing `out_path`; when False it raises FileExistsError.
    Returns:
      dict with "input_size" (w, h), "output_size" (4w, 4h), "mode" written (L, LA, RGB,
      RGBA), "tile" (the tile side used, 0 for whole).
    Raises:
      ValueError: naming the file, for an undecodable or oversized input, a bad format, an
        output path that is the input, or running out of memory at the smallest tile.
      FileExistsError: when `out_path` exists and `overwrite` is False.
      OSError: when the output cannot be written.
    """
    if image_format not in FORMATS:
        raise ValueError(f"--ext must be one of {', '.join(FORMATS)}, got {image_format!r}")
    if tile != "auto":
        check_tiling(tile, overlap)
    if os.path.exists(out_path) and os.path.samefile(input_path, out_path):
        raise ValueError(f"refusing to overwrite input {input_path}")
    if not overwrite and os.path.lexists(out_path):
        raise FileExistsError(f"{out_path} exists")
    rgb, alpha, gray = read_image(input_path, max_pixels)
    height, width = rgb.shape[:2]
    tile = resolve_tile(tile, height, width)
    check_tiling(tile, overlap)
    channels = (1 if gray else 3) + (alpha is not None)
    if alpha is not None and image_format in _NO_ALPHA_FORMATS:
        logging.warning("%s: --ext %s keeps no alpha channel, alpha dropped", input_path,
                        image_format)
    metadata = output_metadata(input_path)
    with files.written_whole(out_path, overwrite) as temp_path:
        while True:
            try:
                bands = ((row, _output_pixels(band, gray)) for row, band in
                         upscale_bands(sr_fn, rgb, alpha, tile, overlap, progress))
                _write_image(temp_path, bands, width * SCALE, height * SCALE, channels,
                             image_format, metadata)
                break
            except tf.errors.ResourceExhaustedError:
                smaller = (tile or max(height, width)) // 2
                if smaller < 2 * overlap + MIN_CORE:
                    raise ValueError(f"out of memory on {input_path} with --tile {tile}: free "
                                     "memory or lower --tile_overlap") from None
                logging.warning("out of memory on %s with tile %s: retrying with tile %d",
                                input_path, tile or "0 (whole image)", smaller)
                tile = smaller
            except tf.errors.OpError as e:
                raise ValueError(f"the model failed on {input_path}: "
                                 f"{errors.first_line(e)}") from None
    return {"input_size": (width, height), "output_size": (width * SCALE, height * SCALE),
            "mode": output_mode(gray, alpha is not None, image_format), "tile": tile}
