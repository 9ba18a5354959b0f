"""Layers shared by the generator and the discriminator."""

import keras
import tensorflow as tf


def conv_init(stddev):
    """Returns the recipe's kernel initializer, N(0, stddev)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)


@keras.saving.register_keras_serializable(package="srgan_tf")
class ICNR(keras.initializers.Initializer):
    """ICNR init of a conv followed by pixel shuffle (Aitken et al. 2017, arXiv:1707.02937).

    Draws a kernel for filters / scale^2 output channels from `stddev` and repeats it for every
    sub-pixel position, so the conv + depth_to_space starts as a conv + nearest-neighbour
    upsampling: no checkerboard pattern at initialisation.

    Args:
      stddev: std of the N(0, stddev) sub-kernel.
      scale: pixel-shuffle factor.
    """

    def __init__(self, stddev=0.02, scale=2, seed=None):
        self.stddev, self.scale, self.seed = stddev, scale, seed

    def __call__(self, shape, dtype=None):
        sub_shape = list(shape[:-1]) + [shape[-1] // self.scale ** 2]
        sub = keras.initializers.RandomNormal(0.0, self.stddev, seed=self.seed)(sub_shape, dtype)
        # depth_to_space puts channel (i * scale + j) * C + c at sub-pixel (i, j) of channel c.
        return tf.tile(sub, [1, 1, 1, self.scale ** 2])

    def get_config(self):
        return {"stddev": self.stddev, "scale": self.scale, "seed": self.seed}


def batch_norm(stddev, momentum, epsilon, name=None):
    """Returns a BatchNormalization layer with gamma ~ N(1, stddev), as TensorLayer initialises it."""
    return keras.layers.BatchNormalization(
        momentum=momentum, epsilon=epsilon,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=stddev), name=name)


def activation(kind, name=None):
    """Returns the generator's activation layer: "relu" or "prelu" (one slope per channel)."""
    if kind == "prelu":
        return keras.layers.PReLU(shared_axes=[1, 2], name=name)
    return keras.layers.ReLU(name=name)


@keras.saving.register_keras_serializable(package="srgan_tf")
class ResidualBlock(keras.layers.Layer):
    """conv3x3 - BN - act - conv3x3 - BN, plus the identity (bias-free convs, as in both recipes).

    Input and output: float [B, H, W, num_feat].
    """

    def __init__(self, num_feat=64, act="relu", init_stddev=0.02, bn_momentum=0.9,
                 bn_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_feat, self.act = num_feat, act
        self.init_stddev, self.bn_momentum, self.bn_epsilon = init_stddev, bn_momentum, bn_epsilon
        conv = dict(kernel_size=3, padding="same", use_bias=False,
                    kernel_initializer=conv_init(init_stddev))
        self.conv1 = keras.layers.Conv2D(num_feat, **conv, name="conv1")
        self.bn1 = batch_norm(init_stddev, bn_momentum, bn_epsilon, name="bn1")
        self.act1 = activation(act, name="act1")
        self.conv2 = keras.layers.Conv2D(num_feat, **conv, name="conv2")
        self.bn2 = batch_norm(init_stddev, bn_momentum, bn_epsilon, name="bn2")

    def call(self, x, training=False):
        y = self.act1(self.bn1(self.conv1(x), training=training))
        return x + self.bn2(self.conv2(y), training=training)

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat, "act": self.act,
                "init_stddev": self.init_stddev, "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon}


@keras.saving.register_keras_serializable(package="srgan_tf")
class Upsample(keras.layers.Layer):
    """conv3x3 to `filters` channels, pixel shuffle x2 (depth_to_space), activation.

    Input: float [B, H, W, C]. Output: float [B, 2H, 2W, filters / 4]. `icnr` initialises the
    conv with ICNR instead of N(0, init_stddev).
    """

    def __init__(self, filters=256, act="relu", init_stddev=0.02, icnr=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.act, self.init_stddev, self.icnr = filters, act, init_stddev, icnr
        init = ICNR(init_stddev) if icnr else conv_init(init_stddev)
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=init,
                                        name="conv")
        self.act_layer = activation(act, name="act")

    def call(self, x):
        return self.act_layer(tf.nn.depth_to_space(self.conv(x), 2))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "act": self.act,
                "init_stddev": self.init_stddev, "icnr": self.icnr}


def set_layers(owner, prefix, layers):
    """Assigns `layers` as attributes `owner.<prefix>0`, `<prefix>1`, ...

    tf.train.Checkpoint does not look inside the lists Keras 3 tracks, so a model that kept its
    blocks in a list would checkpoint only part of its variables. Models keep each layer in its
    own attribute instead and read them back with `get_layers`.
    """
    for i, layer in enumerate(layers):
        setattr(owner, f"{prefix}{i}", layer)


def get_layers(owner, prefix, count):
    """Returns [owner.<prefix>0, ..., owner.<prefix><count - 1>] (None where unset)."""
    return [getattr(owner, f"{prefix}{i}", None) for i in range(count)]
