"""PSNR and SSIM over uint8 images, with the SR papers' protocol as explicit arguments.

The protocol of the published x4 tables (MATLAB code of the SR papers, BasicSR
`basicsr/metrics/psnr_ssim.py`): both images uint8 RGB in [0, 255], a `crop_border`-pixel
border removed (the scale, 4), and the score taken on the Y channel of MATLAB's BT.601 YCbCr
(`test_y_channel=True`). PSNR is computed in float64; SSIM uses `tf.image.ssim` with the
11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03 and 'valid' filtering, as MATLAB's
`ssim_index` does.
"""

import numpy as np
import tensorflow as tf

SSIM_FILTER_SIZE = 11  # Wang et al. 2004, the MATLAB reference implementation
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def rgb_to_y(image):
    """Returns the Y channel of MATLAB's `rgb2ycbcr` (ITU-R BT.601, studio swing), unrounded.

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 255].

    Args:
      image: uint8 or float array [..., 3] in [0, 255], RGB order.
    Returns:
      float64 array [...] in [16, 235].
    Raises:
      ValueError: when the last axis is not 3 channels.
    """
    image = np.asarray(image)
    if image.ndim < 1 or image.shape[-1] != 3:
        raise ValueError(f"rgb_to_y needs [..., 3] RGB, got shape {image.shape}")
    rgb = image.astype(np.float64)
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def _prepare(img1, img2, crop_border, test_y_channel):
    """Checks a pair, removes the border and optionally takes Y; returns float64 [H', W', C]."""
    img1, img2 = np.asarray(img1), np.asarray(img2)
    if img1.shape != img2.shape:
        raise ValueError(f"images must have the same shape, got {img1.shape} and {img2.shape}")
    if img1.ndim != 3:
        raise ValueError(f"images must be [H, W, C], got shape {img1.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    if img1.shape[0] == 0 or img1.shape[1] == 0:
        raise ValueError(f"nothing left after removing a {crop_border}-pixel border")
    if test_y_channel:
        return rgb_to_y(img1)[..., None], rgb_to_y(img2)[..., None]
    return img1.astype(np.float64), img2.astype(np.float64)


def psnr(img1, img2, crop_border, test_y_channel):
    """Peak signal-to-noise ratio in dB for a peak of 255, computed in float64.

    Args:
      img1, img2: uint8 arrays [H, W, 3] in [0, 255] (any [H, W, C] when not `test_y_channel`).
      crop_border: pixels removed from each side before scoring (4 for x4 SR).
      test_y_channel: score the BT.601 Y channel (True, the papers' protocol) or all channels.
    Returns:
      float, in dB; inf for identical images.
    Raises:
      ValueError: for shapes that differ or leave nothing after cropping.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim(img1, img2, crop_border, test_y_channel):
    """Structural similarity (Wang et al. 2004) with `tf.image.ssim`, mean over channels.

    Args:
      img1, img2: uint8 arrays [H, W, 3] in [0, 255] (any [H, W, C] when not `test_y_channel`).
      crop_border: pixels removed from each side before scoring (4 for x4 SR).
      test_y_channel: score the BT.601 Y channel (True, the papers' protocol) or all channels.
    Returns:
      float in (-1, 1]; 1.0 for identical images.
    Raises:
      ValueError: for shapes that differ or smaller than the 11x11 window after cropping.
    """
    a, b = _prepare(img1, img2, crop_border, test_y_channel)
    if min(a.shape[:2]) < SSIM_FILTER_SIZE:
        raise ValueError(f"SSIM needs at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} pixels after "
                         f"removing the border, got {a.shape[0]}x{a.shape[1]}")
    value = tf.image.ssim(tf.constant(a), tf.constant(b), max_val=255.0,
                          filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA,
                          k1=SSIM_K1, k2=SSIM_K2)
    return float(value.numpy())
