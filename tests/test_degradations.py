"""Tests of srgan_tf/degradations.py and the --degradation spec of evaluate."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import degradations, metrics
from srgan_tf.config import Degradation, parse_degradation
from tests.conftest import SAMPLE_DIR

CLEAN = Degradation(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)  # only the random x4 kernel


def _photo(size=96):
    """float32 [size, size, 3] in [0, 1]: a crop of a real photo."""
    image = np.asarray(Image.open(SAMPLE_DIR / "chelsea.png").convert("RGB"))
    return tf.constant(image[:size, :size].astype(np.float32) / 255.0)


def _seed(index):
    return tf.constant([7, index], tf.int64)


def test_realistic_lr_is_a_function_of_its_seed():
    hr = _photo()
    step = tf.function(degradations.realistic_lr)  # the pipeline runs it as a graph
    first = [step(hr, _seed(i)).numpy() for i in range(6)]
    again = [step(hr, _seed(i)).numpy() for i in range(6)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    distinct = {a.tobytes() for a in first}
    assert len(distinct) == 6  # every element gets its own draw


def test_realistic_lr_shape_and_8_bit_levels():
    hr = _photo()
    for i in range(10):
        lr = degradations.realistic_lr(hr, _seed(i)).numpy()
        assert lr.shape == (24, 24, 3)
        assert lr.min() >= 0.0 and lr.max() <= 1.0
        np.testing.assert_allclose(lr * 255.0, np.round(lr * 255.0), atol=1e-3)


def test_without_stages_the_lr_is_one_of_the_three_antialiased_kernels():
    hr = _photo()
    candidates = [np.round(np.clip(tf.image.resize(hr, [24, 24], method=m, antialias=True), 0, 1)
                           * 255.0) for m in ("bicubic", "bilinear", "area")]
    seen = set()
    for i in range(12):
        lr = np.round(degradations.realistic_lr(hr, _seed(i), CLEAN).numpy() * 255.0)
        matches = [k for k, c in enumerate(candidates) if np.array_equal(lr, c)]
        assert matches, f"seed {i}: not a plain x4 downsample"
        seen.update(matches)
    assert seen == {0, 1, 2}


def test_gaussian_noise_has_the_drawn_sigma():
    gray = tf.fill([384, 384, 3], 0.5)
    params = dataclasses.replace(CLEAN, noise_prob=1.0, gaussian_noise_prob=1.0,
                                 noise_range=(10.0, 10.0), gray_noise_prob=0.0)
    lr = degradations.realistic_lr(gray, _seed(0), params).numpy()
    assert np.std(lr * 255.0 - 127.5) == pytest.approx(10.0, rel=0.1)
    assert not np.array_equal(lr[..., 0], lr[..., 1])  # colour noise: channels differ


def test_gray_noise_is_the_same_in_every_channel():
    gray = tf.fill([96, 96, 3], 0.5)
    for poisson in (False, True):
        params = dataclasses.replace(CLEAN, noise_prob=1.0, gray_noise_prob=1.0,
                                     gaussian_noise_prob=0.0 if poisson else 1.0)
        lr = degradations.realistic_lr(gray, _seed(1), params).numpy()
        assert np.std(lr) > 0
        np.testing.assert_array_equal(lr[..., 0], lr[..., 1])
        np.testing.assert_array_equal(lr[..., 0], lr[..., 2])


def test_jpeg_stage_compresses_at_the_drawn_quality():
    hr = _photo()
    params = dataclasses.replace(CLEAN, jpeg_prob=1.0, jpeg_range=(20, 20))
    lr = degradations.realistic_lr(hr, _seed(3), params)
    clean = degradations.realistic_lr(hr, _seed(3), CLEAN)  # same seed: same x4 kernel
    clean_u8 = tf.cast(tf.round(clean * 255.0), tf.uint8)
    expected = tf.cast(tf.image.adjust_jpeg_quality(clean_u8, 20), tf.float32) / 255.0
    np.testing.assert_array_equal(lr.numpy(), expected.numpy())
    assert np.abs(lr.numpy() - clean.numpy()).mean() > 1.0 / 255


def test_blur_stage_blurs_hr_with_the_drawn_kernel_before_the_x4():
    hr = _photo()
    params = dataclasses.replace(CLEAN, blur_prob=1.0, blur_sigma=(2.0, 2.0), isotropic_prob=1.0)
    blurred = degradations.realistic_lr(hr, _seed(4), params).numpy()
    clean = degradations.realistic_lr(hr, _seed(4), CLEAN).numpy()
    kernel = degradations.gaussian_kernel(2.0, 2.0, 0.0, params.kernel_size)
    soft = degradations.blur(hr, kernel)
    candidates = [np.round(np.clip(tf.image.resize(soft, [24, 24], method=m, antialias=True), 0, 1)
                           * 255.0) / 255.0 for m in ("bicubic", "bilinear", "area")]
    assert any(np.array_equal(blurred, c) for c in candidates)

    def energy(x):
        return np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()

    assert energy(blurred) < 0.9 * energy(clean)


def test_gaussian_kernel():
    kernel = degradations.gaussian_kernel(1.0, 1.0, 0.0, 7).numpy()
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-7)
    wide_x = degradations.gaussian_kernel(3.0, 0.5, 0.0, 21).numpy()
    turned = degradations.gaussian_kernel(3.0, 0.5, np.pi / 2, 21).numpy()
    np.testing.assert_allclose(turned, wide_x.T, atol=1e-6)
    assert wide_x[10].sum() > wide_x[:, 10].sum()  # spread along x (columns)


def test_blur_keeps_a_flat_image_and_a_delta_kernel_keeps_any():
    flat = tf.fill([20, 30, 3], 0.25)
    kernel = degradations.gaussian_kernel(2.0, 1.0, 0.3, 9)
    np.testing.assert_allclose(degradations.blur(flat, kernel).numpy(), 0.25, atol=1e-6)
    delta = tf.constant(np.pad([[1.0]], 2).astype(np.float32))
    image = _photo(40)
    np.testing.assert_allclose(degradations.blur(image, delta).numpy(), image.numpy(), atol=1e-6)


@pytest.mark.parametrize("spec, expected", [("jpeg:50", ("jpeg", 50)), ("blur:1.5", ("blur", 1.5)),
                                            ("noise:5", ("noise", 5.0))])
def test_parse_degradation(spec, expected):
    assert parse_degradation(spec) == expected


@pytest.mark.parametrize("spec", ["jpeg", "jpeg:0", "jpeg:101", "jpeg:5.5", "blur:0", "noise:-1",
                                  "noise:nan", "gamma:2", ""])
def test_parse_degradation_refuses(spec):
    with pytest.raises(ValueError, match="--degradation must be"):
        parse_degradation(spec)


def test_degrade_lr_for_evaluation():
    lr = np.asarray(Image.open(SAMPLE_DIR / "chelsea.png").convert("RGB"))[:64, :64]
    for spec in ("jpeg:50", "blur:1.0", "noise:5"):
        out = degradations.degrade_lr(lr, parse_degradation(spec))
        assert out.dtype == np.uint8 and out.shape == lr.shape
        np.testing.assert_array_equal(out, degradations.degrade_lr(lr, parse_degradation(spec)))
        assert not np.array_equal(out, lr)
    # Lower JPEG quality loses more.
    psnr = [metrics.psnr(degradations.degrade_lr(lr, ("jpeg", q)), lr, 0, test_y_channel=True)
            for q in (10, 50, 95)]
    assert psnr[0] < psnr[1] < psnr[2]
    noisy = degradations.degrade_lr(np.full((64, 64, 3), 128, np.uint8), ("noise", 8.0))
    assert np.std(noisy.astype(float)) == pytest.approx(8.0, rel=0.1)
