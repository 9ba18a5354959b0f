"""x4 upscaling of images of any size: model wrappers, tiled inference, alpha, streaming PNG.

A *super-resolver* here is any callable `sr_fn(lr_u8) -> sr_u8` mapping uint8 [h, w, 3] to uint8
[4h, 4w, 3]. `SuperResolver` makes one of a Keras generator (`keras_resolver`), a SavedModel
written by export.py (`saved_model_resolver`) or bicubic upsampling (`bicubic_resolver`).
Evaluation calls it on whole images; this module also calls it tile by tile.

An image of at most WHOLE_IMAGE_PIXELS runs whole; a larger one is tiled (`resolve_tile`).
Tiling is crop-and-stitch in LR space: the model runs on windows of `tile` x `tile` LR pixels
and of each window's output only the core is kept, the part at least `overlap` LR pixels away
from any window edge inside the image. When `overlap` covers the generator's receptive radius
(`serving.receptive_radius`; `load_resolver` returns it with the model) the stitched image equals
whole-image inference (up to float rounding, <= 1/255), so there is no seam to hide. Output is
produced one row of tiles at a time and PNG is written as a stream, so peak memory depends on
the tile size, not on the image size.

Images with alpha are upscaled premultiplied: the model sees colour times alpha, alpha is
upscaled with bicubic, and the colour is divided by the upscaled alpha again, so transparent
pixels lend no colour to the edges. Outputs keep the input's ICC profile and EXIF (orientation
applied to the pixels) and are marked as outputs (`image_files.is_output`).

`python -m srgan_tf.upscale IN... --output_dir DIR` runs the CLI (srgan_tf/cli/upscale.py).
"""

if __name__ == "__main__":
    # The CLI parses its flags and checks its paths before TensorFlow is imported below.
    from srgan_tf.cli import upscale as cli  # pylint: disable=import-outside-toplevel
    __doc__ = cli.__doc__  # absl prints the __main__ docstring as the usage text
    cli.run()

# pylint: disable=wrong-import-position
import os
import struct
import zlib

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, ImageOps

from srgan_tf import files
from srgan_tf.config import IMAGE_EXTENSIONS, SCALE
from srgan_tf.image_files import (DEFAULT_MAX_INPUT_PIXELS, DEFAULT_SUFFIX, FORMATS,  # noqa: F401
                                  check_pixels, image_size, list_inputs, output_metadata,
                                  output_path)
from srgan_tf.imaging import (bicubic_upsample, pil_to_rgb_array, signed_to_uint8,
                              signed_to_unit, uint8_to_signed, unit_to_signed)
from srgan_tf.serving import FLOAT_INPUT, FLOAT_OUTPUT, SIGNATURE_FLOAT, receptive_radius

DEFAULT_TILE = 192  # LR side of a tile, overlap included: ~0.5 GB of activations for the
#                    default generator (cores of 120 px with its 36 px receptive radius)
WHOLE_IMAGE_PIXELS = 384 * 384  # LR pixels run whole by default (memory budget, see docs)
DEFAULT_OVERLAP = 40  # LR context per side when none is given or measured
RADIUS_LIMIT = 64  # largest receptive radius `measured_radius` looks for (LR pixels)
RADIUS_TOLERANCE = 1e-4  # output change in [-1, 1] units that counts as influence (1/80 of a level)
MIN_CORE = 8  # smallest tile core the out-of-memory fallback shrinks to (LR pixels)
ALPHA_CONTEXT = 4  # LR rows of context for bicubic alpha (the x4 bicubic kernel reaches 2)
INPUT_EXTENSIONS = IMAGE_EXTENSIONS
_NO_ALPHA_FORMATS = ("jpeg", "bmp")  # BMP can hold alpha, but PIL and most viewers read it as RGB
_NO_GRAY_FORMATS = ("webp",)  # PIL writes grayscale WebP as RGB
_GRAY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


# ---------------------------------------------------------------------------------------------
# Super-resolvers.

class SuperResolver:
    """A x4 model as a uint8 super-resolver: uint8 [h, w, 3] -> numpy uint8 [4h, 4w, 3].

    Args:
      signed_fn: float32 [1, h, w, 3] in [-1, 1] -> float [1, 4h, 4w, 3] nominally in [-1, 1];
        its output goes through `imaging.signed_to_uint8`, the one path to pixels.
      name: what the resolver is, for logs.
    """

    def __init__(self, signed_fn, name):
        self.signed_fn, self.name = signed_fn, name

    def __call__(self, lr_u8):
        sr = self.signed_fn(uint8_to_signed(np.asarray(lr_u8)[None]))
        return signed_to_uint8(sr)[0].numpy()


def keras_resolver(generator, name="generator"):
    """Wraps a Keras generator ([-1, 1] in and out) as a SuperResolver.

    BatchNorm runs in inference mode (training=False). Any H x W is accepted.

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
    Returns:
      SuperResolver.
    """
    return SuperResolver(lambda x: generator(x, training=False), name)


def saved_model_resolver(path):
    """Loads a SavedModel written by export.py and wraps its `serving_default` signature.

    Args:
      path: SavedModel directory; `serving_default` takes `images` float32 [N, H, W, 3] in
        [0, 1] and returns `sr_images` float32 [N, 4H, 4W, 3] in [0, 1].
    Returns:
      SuperResolver (holding the loaded SavedModel).
    Raises:
      ValueError: naming the directory, when it is not such a SavedModel.
    """
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ValueError(f"cannot load SavedModel {path}: {str(e).splitlines()[0]}") from None
    serving = loaded.signatures.get(SIGNATURE_FLOAT)
    if serving is None or FLOAT_INPUT not in serving.structured_input_signature[1]:
        raise ValueError(f"SavedModel {path} has no {SIGNATURE_FLOAT} signature taking "
                         f"'{FLOAT_INPUT}'")
    logging.info("loaded SavedModel %s", path)

    def signed_fn(x):
        return unit_to_signed(serving(**{FLOAT_INPUT: signed_to_unit(x)})[FLOAT_OUTPUT])
    resolver = SuperResolver(signed_fn, path)
    resolver.saved_model = loaded  # keeps the variables alive as long as the resolver
    return resolver


def bicubic_resolver():
    """Returns the bicubic baseline as a SuperResolver (`imaging.bicubic_upsample`)."""
    return SuperResolver(bicubic_upsample, "bicubic")


def measured_radius(signed_fn, limit=RADIUS_LIMIT, seed=0):
    """Measures how far (LR pixels) a change of the input visibly moves a model's output.

    Runs the model on a random strip twice, changing every LR column from column `limit` + 1
    on, and finds the leftmost output column that moved by more than RADIUS_TOLERANCE. This is
    the effective radius of the model's weights; it never exceeds the architectural one, and
    is used for models whose architecture is unknown (SavedModels).

    Args:
      signed_fn: float32 [1, h, w, 3] in [-1, 1] -> float [1, 4h, 4w, 3] (SuperResolver.signed_fn).
      limit: the largest radius looked for.
      seed: seed of the random strip.
    Returns:
      int in [0, limit], in LR pixels.
    """
    rng = np.random.default_rng(seed)
    width = limit + 1 + 8
    strip = rng.uniform(-1, 1, [1, 12, width, 3]).astype(np.float32)
    changed = strip.copy()
    changed[:, :, limit + 1:] = rng.uniform(-1, 1, changed[:, :, limit + 1:].shape)
    diff = np.abs(np.asarray(signed_fn(tf.constant(changed)), np.float64)
                  - np.asarray(signed_fn(tf.constant(strip)), np.float64))
    moved = np.flatnonzero(diff.max(axis=(0, 1, 3)) > RADIUS_TOLERANCE)
    if moved.size == 0:
        return 0
    return min(limit, limit + 1 - int(moved[0]) // SCALE)


def load_resolver(checkpoint_dir=None, model=None, saved_model=None):
    """Loads a super-resolver from exactly one of a run directory, a model file or a SavedModel.

    Args:
      checkpoint_dir: training run directory (latest stage is used).
      model: path of a `.keras` file or of a SavedModel directory, or the name of a shipped
        model ("srresnet", "srgan": weights/srresnet_x4.keras, weights/srgan_x4.keras).
      saved_model: path of a SavedModel directory written by export.py.
    Returns:
      (resolver, radius): the SuperResolver and the LR context per side that makes its tiled
      output equal its whole-image output: the architectural radius of a srgan_tf Generator,
      else the larger of DEFAULT_OVERLAP and the measured radius.
    Raises:
      ValueError, FileNotFoundError: naming the flag and path.
    """
    from srgan_tf.loading import (  # pylint: disable=import-outside-toplevel
        load_generator, resolve_model)
    model = resolve_model(model) if model else model
    given = {k: v for k, v in (("checkpoint_dir", checkpoint_dir), ("model", model),
                               ("saved_model", saved_model)) if v}
    if len(given) != 1:
        raise ValueError("give exactly one of --checkpoint_dir, --model or --saved_model, got "
                         f"{', '.join('--' + k for k in given) or 'none'}")
    (flag, path), = given.items()
    if not os.path.exists(path):
        raise FileNotFoundError(f"--{flag} {path} does not exist")
    if flag == "saved_model" or (flag == "model" and os.path.isdir(path)):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"--{flag} {path} is not a SavedModel directory (no saved_model.pb)")
        resolver, radius = saved_model_resolver(path), None
    else:
        if flag == "checkpoint_dir" and not os.path.isdir(path):
            raise ValueError(f"--checkpoint_dir {path} is not a directory")
        try:
            generator = load_generator(path)
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"--{flag}: {e}") from None
        resolver = keras_resolver(generator, path)
        try:
            radius = receptive_radius(generator)
        except ValueError:  # not a srgan_tf Generator: measure it
            radius = None
    if radius is None:
        radius = max(DEFAULT_OVERLAP, measured_radius(resolver.signed_fn))
        if radius >= RADIUS_LIMIT:
            logging.warning("%s: receptive radius >= %d LR pixels, tiles may not stitch exactly",
                            path, RADIUS_LIMIT)
    logging.info("loaded %s: tiles get %d LR pixels of context", path, radius)
    return resolver, radius


# ---------------------------------------------------------------------------------------------
# Tiled inference.

def _windows(length, tile, overlap):
    """Splits [0, length) into cores and the windows of `tile` pixels the model runs on.

    A window holds its core plus `overlap` pixels on each side that isn't an image edge, and is
    always `tile` long (unless the whole length fits in one). The first and last cores are
    `tile - overlap` long (they need context on one side only); the cores between split the rest
    evenly into pieces of at most `tile - 2 * overlap`.

    Returns:
      list of (core_start, core_stop, window_start, window_stop).
    """
    if not tile or length <= tile:
        return [(0, length, 0, length)]
    edge = tile - overlap
    if length <= 2 * edge:
        edges = [0, length // 2, length]
    else:
        count = -(-(length - 2 * edge) // (tile - 2 * overlap))
        edges = [0] + [edge + i * (length - 2 * edge) // count for i in range(count + 1)] + [length]
    spans = []
    for start, stop in zip(edges[:-1], edges[1:]):
        window = min(max(0, start - overlap), length - tile)
        spans.append((start, stop, window, window + tile))
    return spans


def count_tiles(height, width, tile, overlap):
    """Returns how many tiles an LR image of `height` rows and `width` columns is split into."""
    return len(_windows(height, tile, overlap)) * len(_windows(width, tile, overlap))


def resolve_tile(tile, height, width):
    """The tile side used for an image: `tile` as given, or for "auto" 0 (whole image) when
    the image has at most WHOLE_IMAGE_PIXELS LR pixels and DEFAULT_TILE above that."""
    if tile != "auto":
        return tile
    return 0 if height * width <= WHOLE_IMAGE_PIXELS else DEFAULT_TILE


def premultiply(rgb_u8, alpha_u8):
    """Colour times alpha: uint8 [H, W, 3] and uint8 [H, W] -> uint8 [H, W, 3], rounded."""
    scaled = rgb_u8.astype(np.float32) * (alpha_u8[..., None].astype(np.float32) / 255.0)
    return np.round(scaled).astype(np.uint8)


def unpremultiply(rgb_u8, alpha_u8):
    """Premultiplied colour divided by alpha: uint8 [H, W, 3], [H, W] -> uint8 [H, W, 3].

    Fully transparent pixels get colour 0 (they have none).
    """
    alpha = alpha_u8[..., None].astype(np.float32)
    colour = rgb_u8.astype(np.float32) * 255.0 / np.maximum(alpha, 1.0)
    return np.where(alpha > 0, np.clip(np.round(colour), 0, 255), 0).astype(np.uint8)


def check_tiling(tile, overlap):
    """Raises ValueError naming the flag when `tile` / `overlap` can't tile an image."""
    if overlap < 0:
        raise ValueError(f"--tile_overlap must be >= 0, got {overlap}")
    if tile is not None and tile < 0:
        raise ValueError(f"--tile must be >= 0 (0: whole image), got {tile}")
    if tile and tile <= 2 * overlap:
        raise ValueError(f"--tile must be more than twice the tile overlap ({overlap}), "
                         f"got {tile}")


def upscale_alpha_rows(alpha_u8, row_start, row_stop):
    """Bicubic x4 upscaling of LR rows [row_start, row_stop) of an alpha plane.

    Uses ALPHA_CONTEXT rows of context above and below, so bands stitch exactly.

    Args:
      alpha_u8: uint8 [h, w] in [0, 255].
      row_start, row_stop: LR row span.
    Returns:
      uint8 [4 * (row_stop - row_start), 4w].
    """
    top = max(0, row_start - ALPHA_CONTEXT)
    bottom = min(alpha_u8.shape[0], row_stop + ALPHA_CONTEXT)
    window = uint8_to_signed(alpha_u8[top:bottom, :, None])
    up = signed_to_uint8(bicubic_upsample(window)).numpy()[..., 0]
    return up[(row_start - top) * SCALE:(row_stop - top) * SCALE]


def upscale_bands(sr_fn, lr_u8, alpha_u8=None, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
                  progress=None):
    """Upscales an image x4 tile by tile and yields the output one row of tiles at a time.

    The model runs on windows of `tile` x `tile` LR pixels; of each window's output only its
    core is kept, the part at least `overlap` pixels away from any window edge that isn't an
    image edge (crop-and-stitch). With `overlap` >= the model's receptive radius the result
    equals whole-image inference.

    Args:
      sr_fn: super-resolver, uint8 [h, w, 3] -> uint8 [4h, 4w, 3].
      lr_u8: uint8 [H, W, 3] in [0, 255], any size.
      alpha_u8: optional uint8 [H, W] alpha plane, upscaled with bicubic; the model then runs
        on premultiplied colour (`premultiply`), divided by the upscaled alpha afterwards.
      tile: LR side of the windows the model runs on, overlap included (memory grows with
        tile^2); 0 or None runs the whole image at once.
      overlap: LR pixels of context around each core; `tile` must exceed 2 * overlap.
      progress: optional callable, called with no argument after each tile.
    Yields:
      (row, band): `row` is the first output row of `band`, uint8 [rows, 4W, 3] (or 4 channels
      with the upscaled alpha last when `alpha_u8` is given).
    Raises:
      ValueError: on a bad tile/overlap, an image that isn't uint8 [H, W, 3] or a model output
        of the wrong shape.
    """
    check_tiling(tile, overlap)
    lr_u8 = np.asarray(lr_u8)
    if lr_u8.ndim != 3 or lr_u8.shape[2] != 3 or lr_u8.dtype != np.uint8:
        raise ValueError(f"expected uint8 [H, W, 3], got {lr_u8.dtype} {lr_u8.shape}")
    height, width = lr_u8.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"image is empty: {width} x {height}")
    channels = 3 if alpha_u8 is None else 4
    if alpha_u8 is not None:
        alpha_u8 = np.asarray(alpha_u8, np.uint8)
        lr_u8 = premultiply(lr_u8, alpha_u8)
    columns = _windows(width, tile, overlap)
    for y0, y1, top, bottom in _windows(height, tile, overlap):
        band = np.empty([(y1 - y0) * SCALE, width * SCALE, channels], np.uint8)
        for x0, x1, left, right in columns:
            sr = np.asarray(sr_fn(lr_u8[top:bottom, left:right]))
            expected = ((bottom - top) * SCALE, (right - left) * SCALE, 3)
            if sr.shape != expected:
                raise ValueError(f"the model returned {sr.shape} for a {right - left} x "
                                 f"{bottom - top} input, expected {expected}")
            band[:, x0 * SCALE:x1 * SCALE, :3] = sr[(y0 - top) * SCALE:(y1 - top) * SCALE,
                                                    (x0 - left) * SCALE:(x1 - left) * SCALE]
            if progress is not None:
                progress()
        if alpha_u8 is not None:
            band[..., 3] = upscale_alpha_rows(alpha_u8, y0, y1)
            band[..., :3] = unpremultiply(band[..., :3], band[..., 3])
        yield y0 * SCALE, band


def upscale_array(sr_fn, lr_u8, alpha_u8=None, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
                  progress=None):
    """Upscales an image x4 (tiled unless `tile` is 0/None) into one array.

    Args:
      sr_fn, lr_u8, alpha_u8, tile, overlap, progress: as for `upscale_bands`.
    Returns:
      uint8 [4H, 4W, 3] in [0, 255], or [4H, 4W, 4] with the upscaled alpha last.
    """
    lr_u8 = np.asarray(lr_u8)
    channels = 3 if alpha_u8 is None else 4
    out = None
    for row, band in upscale_bands(sr_fn, lr_u8, alpha_u8, tile, overlap, progress):
        if out is None:
            out = np.empty([lr_u8.shape[0] * SCALE, lr_u8.shape[1] * SCALE, channels], np.uint8)
        out[row:row + band.shape[0]] = band
    return out


# ---------------------------------------------------------------------------------------------
# Files.

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


class PngStreamWriter:
    """Writes an 8-bit PNG row band by row band, so the whole image never sits in memory.

    Rows are Paeth-filtered and deflated into one zlib stream split over IDAT chunks.

    Args:
      path: output file.
      width, height: image size in pixels.
      channels: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA).
      icc_profile: optional ICC profile bytes, written as an iCCP chunk.
      exif: optional EXIF bytes (with or without the "Exif\\0\\0" prefix), written as an eXIf
        chunk before the pixels.
    """

    _COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}

    def __init__(self, path, width, height, channels, icc_profile=None, exif=None):
        if channels not in self._COLOR_TYPES:
            raise ValueError(f"PNG channels must be 1-4, got {channels}")
        self.width, self.height, self.channels = width, height, channels
        self.rows_written = 0
        self._previous = np.zeros([width * channels], np.uint8)
        self._deflate = zlib.compressobj(6)
        self._file = open(path, "wb")  # pylint: disable=consider-using-with
        self._file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                         self._COLOR_TYPES[channels], 0, 0, 0))
        if icc_profile:
            self._chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))
        if exif:
            self._chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)

    def _chunk(self, kind, data):
        self._file.write(struct.pack(">I", len(data)) + kind + data)
        self._file.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def _paeth(self, rows):
        """Filters uint8 [n, width * channels] rows with PNG filter 4 (Paeth); returns bytes."""
        above = np.concatenate([self._previous[None], rows[:-1]]).astype(np.int16)
        current = rows.astype(np.int16)
        left = np.zeros_like(current)
        left[:, self.channels:] = current[:, :-self.channels]
        upper_left = np.zeros_like(current)
        upper_left[:, self.channels:] = above[:, :-self.channels]
        pa, pb = np.abs(above - upper_left), np.abs(left - upper_left)
        pc = np.abs(left + above - 2 * upper_left)
        predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
        filtered = ((current - predictor) & 0xFF).astype(np.uint8)
        framed = np.concatenate([np.full([len(rows), 1], 4, np.uint8), filtered], axis=1)
        self._previous = rows[-1].copy()
        return framed.tobytes()

    def write(self, band):
        """Appends rows: uint8 [n, width, channels] (or [n, width] for one channel)."""
        band = np.asarray(band, dtype=np.uint8).reshape(len(band), -1)
        if band.shape[1] != self.width * self.channels:
            raise ValueError(f"PNG rows must hold {self.width}x{self.channels} values, "
                             f"got {band.shape[1]}")
        if self.rows_written + len(band) > self.height:
            raise ValueError(f"PNG is {self.height} rows high, got {self.rows_written + len(band)}")
        for start in range(0, len(band), 64):  # bounds the int16 temporaries
            data = self._deflate.compress(self._paeth(band[start:start + 64]))
            if data:
                self._chunk(b"IDAT", data)
        self.rows_written += len(band)

    def close(self):
        """Finishes the file; raises ValueError if fewer rows than the height were written."""
        if self._file.closed:
            return
        try:
            if self.rows_written != self.height:
                raise ValueError(f"PNG is {self.height} rows high, "
                                 f"only {self.rows_written} written")
            self._chunk(b"IDAT", self._deflate.flush())
            self._chunk(b"IEND", b"")
        finally:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


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
                                 f"{e.message.splitlines()[0]}") from None
    return {"input_size": (width, height), "output_size": (width * SCALE, height * SCALE),
            "mode": output_mode(gray, alpha is not None, image_format), "tile": tile}
