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


# ------------------------------------------------------------------------------------------------
# Artifact measures (optional in the evaluator): colour shift, texture, checkerboard.


def _shaved(image, crop_border):
    image = np.asarray(image, dtype=np.float64)
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return image


def color_shift(sr_u8, hr_u8, crop_border=0):
    """Mean absolute difference of the per-channel means, in 0..255 units.

    A GAN that tints its output shows here (users' complaint: "colour shift").

    Args:
      sr_u8, hr_u8: uint8 [H, W, 3].
    Returns:
      float >= 0.
    """
    sr, hr = _shaved(sr_u8, crop_border), _shaved(hr_u8, crop_border)
    return float(np.mean(np.abs(sr.mean(axis=(0, 1)) - hr.mean(axis=(0, 1)))))


def _laplacian_energy(y):
    lap = (4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    return float(np.mean(lap ** 2))


def high_frequency_ratio(sr_u8, hr_u8, crop_border=0):
    """Energy of the Laplacian of Y(SR) over that of Y(HR): texture the SR has, relative to HR.

    Bicubic and MSE-trained models are blurry (ratio well below 1); a GAN restores texture (closer
    to 1; above 1 means invented high frequencies, e.g. noise or artifacts).

    Args:
      sr_u8, hr_u8: uint8 [H, W, 3].
    Returns:
      float >= 0.
    """
    sr, hr = rgb_to_y(_shaved(sr_u8, crop_border)), rgb_to_y(_shaved(hr_u8, crop_border))
    return _laplacian_energy(sr) / max(_laplacian_energy(hr), 1e-12)


def checkerboard_ratio(sr_u8, bicubic_u8, hr_u8):
    """Periodic-artifact energy of a x4 pixel-shuffle output, relative to the HR image.

    Two x2 pixel shuffles can leave patterns of period 2 and 4 pixels. This takes the Y-channel
    residual SR - bicubic, and sums its spectral power at the 15 frequencies (k H/4, l W/4), k, l in
    0..3, (k, l) != (0, 0), divided by the HR image's power at the same frequencies (mean removed).
    A clean output is around 1 or below; a visible checkerboard gives a ratio far above 1.

    Args:
      sr_u8, bicubic_u8, hr_u8: uint8 [H, W, 3], H and W multiples of 4 (modcropped).
    Returns:
      float >= 0.
    """
    h, w = hr_u8.shape[:2]
    if h % 4 or w % 4:
        raise ValueError(f"checkerboard_ratio needs sides that are multiples of 4, got {h}x{w}")
    residual = rgb_to_y(np.asarray(sr_u8, np.float64)) - rgb_to_y(np.asarray(bicubic_u8, np.float64))
    hr = rgb_to_y(np.asarray(hr_u8, np.float64))
    rows = (np.arange(4) * (h // 4))[:, None]
    cols = (np.arange(4) * (w // 4))[None, :]
    power_res = np.abs(np.fft.fft2(residual))[rows, cols] ** 2
    power_hr = np.abs(np.fft.fft2(hr - hr.mean()))[rows, cols] ** 2
    power_res[0, 0] = power_hr[0, 0] = 0.0
    return float(power_res.sum() / max(power_hr.sum(), 1e-12))
