"""Degradations beyond the clean bicubic x4 downsample: blur, noise and JPEG compression.

Two uses share these pure tensor functions:

* training with `--degradation realistic`: `realistic_lr` makes each LR patch from its HR patch by a
  randomised chain (blur, x4 downsample with a random kernel, Gaussian or Poisson noise, JPEG),
  every draw taken from a stateless seed, so the LR of element k is a function of (seed, k) only
  and a resumed run makes exactly the LR an uninterrupted one would;
* evaluation with `--degradation jpeg:Q | blur:S | noise:S` (`config.parse_degradation`):
  `degrade_lr` applies one fixed
  degradation to the protocol's bicubic LR (`evaluate.protocol_lr`), so the gain of a model trained
  for real photos is scored with the usual protocol; training with the same `--degradation
  KIND:VALUE` applies it (`degrade_fixed`) to each training LR patch.

The ranges of the chain are those of `config.Degradation` (with their sources). Images here are
float32 in [0, 1] (the range JPEG and noise levels are defined in) or uint8; the conversions to the
model range live in `imaging`.
"""

import math

import tensorflow as tf

from srgan_tf.config import SCALE, Degradation, blur_radius

_DOWNSAMPLE_METHODS = ("bicubic", "bilinear", "area")


def gaussian_kernel(sigma_x, sigma_y, theta, size):
    """Returns a normalised 2-D Gaussian kernel, anisotropic and rotated.

    Args:
      sigma_x, sigma_y: float32 scalars, standard deviations (pixels) along the rotated axes.
      theta: float32 scalar, rotation in radians.
      size: odd Python int, kernel side.
    Returns:
      float32 [size, size], summing to 1.
    """
    half = (size - 1) / 2.0
    grid = tf.range(size, dtype=tf.float32) - half
    y, x = tf.meshgrid(grid, grid, indexing="ij")
    cos, sin = tf.cos(theta), tf.sin(theta)
    u = cos * x + sin * y
    v = -sin * x + cos * y
    kernel = tf.exp(-0.5 * (tf.square(u / sigma_x) + tf.square(v / sigma_y)))
    return kernel / tf.reduce_sum(kernel)


def blur(image, kernel):
    """Convolves every channel of `image` with `kernel`, reflecting the borders.

    Args:
      image: float32 [H, W, C]; H and W larger than half the kernel.
      kernel: float32 [k, k], k odd.
    Returns:
      float32 [H, W, C].
    """
    k = kernel.shape[0]
    pad = k // 2
    channels = image.shape[-1]
    padded = tf.pad(image[None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    filters = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(padded, filters, [1, 1, 1, 1], "VALID")[0]


def _uniform(seed, low, high):
    return tf.random.stateless_uniform([], seed, low, high, dtype=tf.float32)


def _chance(seed, probability):
    return tf.random.stateless_uniform([], seed, 0.0, 1.0) < probability


def _noise(image, seed, params):
    """Adds Gaussian or Poisson noise (colour or gray) to float32 [H, W, 3] in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    gray = _chance(seeds[0], params.gray_noise_prob)  # one noise channel for all three

    def gaussian():
        sigma = _uniform(seeds[1], *params.noise_range) / 255.0
        noise = tf.random.stateless_normal(tf.shape(image), seeds[2]) * sigma
        return tf.where(gray, tf.broadcast_to(noise[..., :1], tf.shape(image)), noise)

    def poisson():
        # Photon noise: each 8-bit level counts as one photon, scaled by a random factor.
        scale = _uniform(seeds[1], *params.poisson_scale_range)
        source = tf.cond(gray, lambda: tf.reduce_mean(image, axis=-1, keepdims=True),
                         lambda: image)
        counts = tf.random.stateless_poisson(tf.shape(source), seeds[2], source * 255.0,
                                             dtype=tf.float32)
        return tf.broadcast_to((counts / 255.0 - source) * scale, tf.shape(image))

    noise = tf.cond(_chance(seeds[3], params.gaussian_noise_prob), gaussian, poisson)
    return tf.clip_by_value(image + noise, 0.0, 1.0)


def _downsample(image, method_index, scale=SCALE):
    """x`scale` downsample of float32 [H, W, 3] with one of _DOWNSAMPLE_METHODS (antialiased)."""
    size = tf.shape(image)[:2] // scale
    branches = [lambda m=m: tf.image.resize(image, size, method=m, antialias=True)
                for m in _DOWNSAMPLE_METHODS]
    return tf.switch_case(method_index, branches)


def realistic_lr(hr, seed, params=Degradation()):
    """Makes one LR patch from its HR patch by a randomised degradation chain.

    Order (one pass of the first-order model of Real-ESRGAN, section 3.1): blur with a random
    isotropic or anisotropic Gaussian kernel (probability `blur_prob`), x4 downsample with a random
    kernel (bicubic, bilinear or area), noise (probability `noise_prob`: Gaussian or Poisson,
    colour or gray), JPEG at a random quality (probability `jpeg_prob`), then rounding to 8 bits
    as a saved LR image would be. Every draw comes from `seed`.

    Args:
      hr: float32 [H, W, 3] in [0, 1]; H and W multiples of 4.
      seed: int32 or int64 [2], the element's stateless seed.
      params: a config.Degradation with the ranges and probabilities.
    Returns:
      float32 [H/4, W/4, 3] in [0, 1], multiples of 1/255.
    """
    seeds = tf.random.experimental.stateless_split(seed, 12)
    image = hr

    def blurred():
        isotropic = _chance(seeds[1], params.isotropic_prob)
        sigma_x = _uniform(seeds[2], *params.blur_sigma)
        sigma_y = tf.where(isotropic, sigma_x, _uniform(seeds[3], *params.blur_sigma))
        theta = tf.where(isotropic, 0.0, _uniform(seeds[4], -math.pi, math.pi))
        return blur(image, gaussian_kernel(sigma_x, sigma_y, theta, params.kernel_size))

    image = tf.cond(_chance(seeds[0], params.blur_prob), blurred, lambda: image)
    method = tf.random.stateless_uniform([], seeds[5], 0, len(_DOWNSAMPLE_METHODS), dtype=tf.int32)
    image = tf.clip_by_value(_downsample(image, method), 0.0, 1.0)
    image = tf.cond(_chance(seeds[6], params.noise_prob), lambda: _noise(image, seeds[7], params),
                    lambda: image)

    # A saved (or camera-encoded) LR image has 8-bit samples: JPEG compresses those.
    lr_u8 = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)

    def compressed():
        quality = tf.random.stateless_uniform([], seeds[9], params.jpeg_range[0],
                                              params.jpeg_range[1] + 1, dtype=tf.int32)
        return tf.image.adjust_jpeg_quality(lr_u8, quality)

    lr_u8 = tf.cond(_chance(seeds[8], params.jpeg_prob), compressed, lambda: lr_u8)
    lr = tf.cast(lr_u8, tf.float32) / 255.0
    return tf.ensure_shape(lr, [hr.shape[0] // SCALE if hr.shape[0] else None,
                                hr.shape[1] // SCALE if hr.shape[1] else None, 3])


def degrade_fixed(lr_u8, spec, seed):
    """Applies one fixed degradation to an LR image, in TensorFlow ops.

    Evaluation (`degrade_lr`) and training with `--degradation KIND:VALUE` (data.py) share it, so
    a model is trained on exactly the degradation it is scored on.

    Args:
      lr_u8: uint8 [h, w, 3], a bicubic LR rounded to 8 bits.
      spec: (kind, value) from `config.parse_degradation`: JPEG at quality value, Gaussian blur
        of sigma value LR pixels, or Gaussian noise of sigma value 8-bit levels.
      seed: int32 or int64 [2], the stateless seed of the noise.
    Returns:
      uint8 [h, w, 3].
    """
    kind, value = spec
    if kind == "jpeg":
        return tf.image.adjust_jpeg_quality(lr_u8, value)
    image = tf.cast(lr_u8, tf.float32) / 255.0
    if kind == "blur":
        image = blur(image, gaussian_kernel(value, value, 0.0, 2 * blur_radius(value) + 1))
    else:  # noise
        image += tf.random.stateless_normal(tf.shape(image), seed) * (value / 255.0)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)


def degrade_lr(lr_u8, spec, seed=0):
    """Applies one fixed degradation to an LR image (evaluation).

    Args:
      lr_u8: uint8 [h, w, 3], the protocol's bicubic LR.
      spec: (kind, value) from `config.parse_degradation`.
      seed: seed of the noise (the same image always gets the same noise).
    Returns:
      numpy uint8 [h, w, 3].
    """
    return degrade_fixed(tf.convert_to_tensor(lr_u8), spec, [seed, 0]).numpy()
