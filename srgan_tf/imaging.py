"""Pixel-range conversions, bicubic resampling, mod-crop and image-file reading.

Inside the project images are float32 in [-1, 1] (the recipe's range and the generator's tanh
output). uint8 appears only at the edges; every conversion between the two lives here.
"""

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from srgan_tf.config import SCALE


def uint8_to_signed(x_u8):
    """Maps uint8 pixels to the model range.

    Args:
      x_u8: uint8 tensor [..., 3] in [0, 255].
    Returns:
      float32 tensor of the same shape in [-1, 1].
    """
    return tf.cast(x_u8, tf.float32) / 127.5 - 1.0


def signed_to_unit(x):
    """Maps float [-1, 1] to float32 [0, 1] (not clipped)."""
    return (tf.cast(x, tf.float32) + 1.0) / 2.0


def unit_to_signed(x):
    """Maps float [0, 1] to float32 [-1, 1] (not clipped)."""
    return tf.cast(x, tf.float32) * 2.0 - 1.0


def signed_to_uint8(x):
    """The one path from model output to pixels: clip to [-1, 1], scale, round, cast.

    Args:
      x: float tensor [..., 3] nominally in [-1, 1].
    Returns:
      uint8 tensor of the same shape.
    """
    x = tf.clip_by_value(tf.cast(x, tf.float32), -1.0, 1.0)
    return tf.cast(tf.round((x + 1.0) * 127.5), tf.uint8)


def bicubic_downsample(hr, scale=SCALE):
    """Antialiased bicubic downsampling (Keys a=-0.5, like MATLAB imresize and PIL).

    Without antialiasing the LR images alias and a model trained on them scores ~0.4 dB lower on
    the standard benchmarks.

    Args:
      hr: float32 [B, H, W, C] or [H, W, C]; H and W multiples of `scale`.
      scale: integer downsampling factor.
    Returns:
      float32 [B, H/scale, W/scale, C] (or unbatched), same range as `hr` (slight over/undershoot).
    """
    shape = tf.shape(hr)
    size = tf.stack([shape[-3] // scale, shape[-2] // scale])
    return tf.image.resize(hr, size, method="bicubic", antialias=True)


def bicubic_upsample(lr, scale=SCALE):
    """Bicubic upsampling by `scale` (the baseline SR method).

    Args:
      lr: float32 [B, h, w, C] or [h, w, C].
      scale: integer upsampling factor.
    Returns:
      float32 [B, h*scale, w*scale, C] (or unbatched), not clipped.
    """
    shape = tf.shape(lr)
    size = tf.stack([shape[-3] * scale, shape[-2] * scale])
    return tf.image.resize(lr, size, method="bicubic", antialias=True)


def modcrop(image, scale=SCALE):
    """Crops the bottom/right so height and width are multiples of `scale`.

    Args:
      image: array or tensor [H, W, C] (or [H, W]).
    Returns:
      the same type, [H - H % scale, W - W % scale, ...].
    """
    h, w = image.shape[0], image.shape[1]
    return image[: h - h % scale, : w - w % scale]


def pil_to_rgb_array(image):
    """Converts a PIL image of any mode to uint8 RGB, honouring EXIF orientation.

    Grayscale is replicated to three channels, alpha is dropped (composited nowhere: the colour
    channels are kept as stored), palette and CMYK are converted, 16-bit samples are scaled to 8 bits.

    Args:
      image: a PIL.Image.
    Returns:
      numpy uint8 [H, W, 3].
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if wide.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        gray = np.clip(np.round(wide * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        gray = np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_rgb(path):
    """Reads an image file of any format PIL knows as uint8 RGB.

    Args:
      path: file path (str or bytes).
    Returns:
      numpy uint8 [H, W, 3].
    Raises:
      ValueError: naming the file, when it cannot be decoded.
    """
    if isinstance(path, np.ndarray):  # a scalar string tensor passed through tf.numpy_function
        path = path.item()
    if isinstance(path, bytes):
        path = path.decode()
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_rgb_array(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode {path}: {e}") from None
