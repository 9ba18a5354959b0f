"""SRGAN losses as pure functions returning one value per example.

The trainer weights them with the recipe's factors and averages them over the global batch
(`tf.nn.compute_average_loss`), so they behave the same under any `tf.distribute` strategy.
"""

import tensorflow as tf


def _mean_per_example(x):
    return tf.reduce_mean(tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1]), axis=1)


def pixel_loss(hr, sr):
    """Mean squared error per image.

    Args:
      hr, sr: float [B, H, W, 3] in [-1, 1].
    Returns:
      float32 [B].
    """
    return _mean_per_example(tf.square(tf.cast(sr, tf.float32) - tf.cast(hr, tf.float32)))


def perceptual_loss(hr_features, sr_features, feature_scale=1.0):
    """Mean squared error between (scaled) VGG feature maps per image.

    Args:
      hr_features, sr_features: float [B, h, w, C].
      feature_scale: multiplies both feature maps first (the paper uses 1/12.75).
    Returns:
      float32 [B].
    """
    diff = (tf.cast(sr_features, tf.float32) - tf.cast(hr_features, tf.float32)) * feature_scale
    return _mean_per_example(tf.square(diff))


def _bce_with_logits(logits, label):
    logits = tf.cast(tf.reshape(logits, [tf.shape(logits)[0]]), tf.float32)
    labels = tf.fill(tf.shape(logits), float(label))
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def generator_adversarial_loss(fake_logits):
    """BCE(D(sr), 1) per image: the generator wants its output called real.

    Args:
      fake_logits: float [B, 1] discriminator logits on generated images.
    Returns:
      float32 [B].
    """
    return _bce_with_logits(fake_logits, 1.0)


def discriminator_loss(real_logits, fake_logits):
    """BCE(D(hr), 1) + BCE(D(sr), 0) per image.

    Args:
      real_logits, fake_logits: float [B, 1] discriminator logits.
    Returns:
      float32 [B].
    """
    return _bce_with_logits(real_logits, 1.0) + _bce_with_logits(fake_logits, 0.0)
