"""Losses on exact cases."""

import numpy as np
import tensorflow as tf

from srgan_tf import losses


def test_pixel_loss_is_per_image_mse():
    hr = tf.zeros([2, 4, 4, 3])
    sr = tf.concat([tf.fill([1, 4, 4, 3], 0.5), tf.fill([1, 4, 4, 3], -1.0)], axis=0)
    np.testing.assert_allclose(losses.pixel_loss(hr, sr).numpy(), [0.25, 1.0])


def test_perceptual_loss_applies_feature_scale():
    a, b = tf.zeros([1, 2, 2, 4]), tf.fill([1, 2, 2, 4], 12.75)
    np.testing.assert_allclose(losses.perceptual_loss(a, b).numpy(), [12.75 ** 2])
    np.testing.assert_allclose(losses.perceptual_loss(a, b, 1 / 12.75).numpy(), [1.0], rtol=1e-6)


def test_adversarial_losses_are_bce_with_logits():
    logits = tf.constant([[0.0], [2.0]])
    np.testing.assert_allclose(losses.generator_adversarial_loss(logits).numpy(),
                               [np.log(2), np.log1p(np.exp(-2.0))], rtol=1e-6)
    d = losses.discriminator_loss(tf.constant([[0.0]]), tf.constant([[0.0]])).numpy()
    np.testing.assert_allclose(d, [2 * np.log(2)], rtol=1e-6)
    # A confident, correct discriminator has a small loss.
    assert losses.discriminator_loss(tf.constant([[9.0]]), tf.constant([[-9.0]])).numpy()[0] < 1e-3
