"""Tests of srgan_tf.metrics: BT.601 Y, PSNR and SSIM with the papers' protocol arguments."""

import math

import numpy as np
import pytest

from srgan_tf import metrics


def test_rgb_to_y_matches_hand_computed_matlab_values():
    # MATLAB: rgb2ycbcr(double(rgb) / 255) * 255, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
    rgb = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                    [10, 200, 50], [128, 64, 32]], np.uint8)
    expected = [16.0, 235.0, 81.481, 144.553, 40.966, 124.28906, 84.26616]
    np.testing.assert_allclose(metrics.rgb_to_y(rgb), expected, atol=1e-3)


def test_rgb_to_y_keeps_leading_shape_and_is_float64():
    y = metrics.rgb_to_y(np.zeros([5, 7, 3], np.uint8))
    assert y.shape == (5, 7) and y.dtype == np.float64


def test_rgb_to_y_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\] RGB, got shape \(4, 4, 4\)"):
        metrics.rgb_to_y(np.zeros([4, 4, 4], np.uint8))


def test_psnr_identical_images_is_inf():
    image = np.random.default_rng(0).integers(0, 256, [20, 20, 3], dtype=np.uint8)
    assert metrics.psnr(image, image, crop_border=4, test_y_channel=True) == math.inf


def test_psnr_of_a_known_mse():
    a = np.full([16, 16, 3], 100, np.uint8)
    b = a + 5
    # RGB: MSE 25. Y: the offset becomes 5 * 219 / 255 (the Y weights sum to 219 / 255).
    assert metrics.psnr(a, b, 0, test_y_channel=False) == pytest.approx(
        10 * math.log10(255 ** 2 / 25), abs=1e-9)
    assert metrics.psnr(a, b, 0, test_y_channel=True) == pytest.approx(
        10 * math.log10(255 ** 2 / (5 * 219 / 255) ** 2), abs=1e-9)


def test_crop_border_removes_exactly_the_border():
    a = np.full([20, 20, 3], 50, np.uint8)
    b = a.copy()
    b[:4], b[-4:], b[:, :4], b[:, -4:] = 0, 0, 0, 0  # differences only in the 4-pixel border
    assert metrics.psnr(a, b, crop_border=4, test_y_channel=True) == math.inf
    assert metrics.psnr(a, b, crop_border=3, test_y_channel=True) < 30
    b[4, 4] = 51
    assert metrics.psnr(a, b, crop_border=4, test_y_channel=False) == pytest.approx(
        10 * math.log10(255 ** 2 / (3 / (12 * 12 * 3))), abs=1e-9)


def reference_ssim(a, b):
    """Wang et al.'s SSIM on one float64 channel (11x11 Gaussian, sigma 1.5, 'valid'), in numpy."""
    x = np.arange(11) - 5
    g = np.exp(-(x ** 2) / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img):
        h, w = img.shape
        out = np.empty([h - 10, w - 10])
        for i in range(h - 10):
            for j in range(w - 10):
                out[i, j] = np.sum(img[i:i + 11, j:j + 11] * window)
        return out

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b = filt(a * a) - mu_a ** 2, filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return ssim_map.mean()


def test_ssim_matches_a_reference_implementation_on_the_y_channel():
    rng = np.random.default_rng(1)
    hr = np.clip(rng.normal(128, 40, [32, 30, 3]), 0, 255).astype(np.uint8)
    noisy = np.clip(hr + rng.normal(0, 30, hr.shape), 0, 255).astype(np.uint8)
    expected = reference_ssim(metrics.rgb_to_y(noisy)[4:-4, 4:-4],
                              metrics.rgb_to_y(hr)[4:-4, 4:-4])
    assert metrics.ssim(noisy, hr, crop_border=4, test_y_channel=True) == pytest.approx(
        expected, abs=1e-4)
    assert 0.3 < expected < 0.95


def test_ssim_of_identical_and_of_inverted_images():
    image = np.random.default_rng(2).integers(0, 256, [24, 24, 3], dtype=np.uint8)
    assert metrics.ssim(image, image, 4, test_y_channel=True) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ssim(image, 255 - image, 4, test_y_channel=False) < 0


def test_rgb_ssim_is_the_mean_over_channels():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, [20, 20, 3], dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    per_channel = [reference_ssim(a[..., c].astype(float), b[..., c].astype(float))
                   for c in range(3)]
    assert metrics.ssim(a, b, 0, test_y_channel=False) == pytest.approx(np.mean(per_channel),
                                                                        abs=1e-4)


def test_metrics_reject_bad_pairs():
    a = np.zeros([16, 16, 3], np.uint8)
    with pytest.raises(ValueError, match=r"same shape, got \(16, 16, 3\) and \(16, 12, 3\)"):
        metrics.psnr(a, a[:, :12], 4, test_y_channel=True)
    with pytest.raises(ValueError, match="at least 11x11 pixels after removing the border, "
                                         "got 8x8"):
        metrics.ssim(a, a, 4, test_y_channel=True)
    with pytest.raises(ValueError, match="nothing left after removing a 8-pixel border"):
        metrics.psnr(a, a, 8, test_y_channel=True)
    with pytest.raises(ValueError, match=r"\[H, W, C\], got shape \(16, 16\)"):
        metrics.psnr(a[..., 0], a[..., 0], 0, test_y_channel=False)


# Artifact measures ------------------------------------------------------------------------------

def _photo(h=64, w=80, seed=0):
    from tests.conftest import SAMPLE_DIR
    from PIL import Image
    with Image.open(SAMPLE_DIR / "coffee.png") as image:
        return np.asarray(image.convert("RGB"))[100:100 + h, 200:200 + w].copy()


def test_color_shift_measures_a_tint_in_pixel_units():
    hr = _photo()
    assert metrics.color_shift(hr, hr) == 0.0
    tinted = np.clip(hr.astype(int) + [6, 0, -3], 0, 255).astype(np.uint8)
    assert 2.5 < metrics.color_shift(tinted, hr) <= 3.0  # (6 + 0 + 3) / 3, less where clipped


def test_high_frequency_ratio_is_low_for_blur_and_one_for_identity():
    import tensorflow as tf
    hr = _photo()
    assert metrics.high_frequency_ratio(hr, hr) == pytest.approx(1.0)
    lr = tf.image.resize(hr[None].astype(np.float32), [16, 20], "bicubic", antialias=True)
    blurred = tf.image.resize(lr, [64, 80], "bicubic").numpy()[0].clip(0, 255).astype(np.uint8)
    assert metrics.high_frequency_ratio(blurred, hr) < 0.5


def test_checkerboard_ratio_flags_period_two_and_four_patterns():
    hr = _photo()
    smooth = hr  # SR equal to HR: the residual against "bicubic" is natural content
    clean = metrics.checkerboard_ratio(smooth, hr, hr)
    assert clean == 0.0
    y, x = np.mgrid[0:64, 0:80]
    pattern = (((y // 2) + (x // 2)) % 2 * 2 - 1) * 8  # period 4, amplitude 8 grey levels
    checker = np.clip(hr.astype(int) + pattern[..., None], 0, 255).astype(np.uint8)
    noise = np.clip(hr.astype(int) + np.random.default_rng(0).integers(-8, 9, hr.shape), 0, 255)
    ratio_checker = metrics.checkerboard_ratio(checker, hr, hr)
    ratio_noise = metrics.checkerboard_ratio(noise.astype(np.uint8), hr, hr)
    assert ratio_checker > 10 * ratio_noise
    with pytest.raises(ValueError, match="multiples of 4, got 63x80"):
        metrics.checkerboard_ratio(hr[:63], hr[:63], hr[:63])
