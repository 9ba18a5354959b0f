"""Tiled x4 inference: crop-and-stitch windows in LR space, alpha premultiplied, row bands out.

Of each window's output only the core is kept, the part at least `overlap` LR pixels away from any
window edge inside the image; with `overlap` >= the model's receptive radius the stitched image
equals whole-image inference. Output comes one row of tiles at a time (`upscale_bands`).
"""

import numpy as np

from srgan_tf.config import SCALE
from srgan_tf.imaging import bicubic_upsample, signed_to_uint8, uint8_to_signed

DEFAULT_TILE = 192  # LR side of a tile, overlap included: ~0.5 GB of activations for the
#                    default generator (cores of 120 px with its 36 px receptive radius)
WHOLE_IMAGE_PIXELS = 384 * 384  # LR pixels run whole by default (memory budget, see docs)
DEFAULT_OVERLAP = 40  # LR context per side when none is given or measured
ALPHA_CONTEXT = 4  # LR rows of context for bicubic alpha (the x4 bicubic kernel reaches 2)


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
