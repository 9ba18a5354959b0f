"""The SRGAN discriminators; both return logits."""

import keras

from srgan_tf.config import PRESETS
from srgan_tf.models.blocks import batch_norm, conv_init, get_layers, set_layers


@keras.saving.register_keras_serializable(package="srgan_tf")
class Discriminator(keras.Model):
    """SRGAN discriminator returning one logit per image.

    * "tensorlayer" (tensorlayer/srgan get_D): 4x4 stride-2 convs of 64 (no BN), 128, 256, 512,
      1024, 2048 (BN); 1x1 1024 (BN, LReLU), 1x1 512 (BN); residual branch 1x1 128, 3x3 128,
      3x3 512 (BN, LReLU between), add, LReLU, flatten, dense 1. Input side a multiple of 64.
    * "paper" (Ledig et al. Fig. 4): conv3x3 64 + LReLU, then 7 conv3x3-BN-LReLU blocks of
      64/128/128/256/256/512/512 filters with strides 2/1/2/1/2/1/2, dense 1024, LReLU, dense 1.
      Input side a multiple of 16.

    The dense layer is built for the crop size of the first call.

    Call:
      x: float32 [B, S, S, 3] in [-1, 1]. Returns float [B, 1] logits.
    """

    def __init__(self, preset="tensorlayer", disc_feat=64, init_stddev=0.02, bn_momentum=0.9,
                 bn_epsilon=1e-5, leaky_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset, self.disc_feat, self.init_stddev = preset, disc_feat, init_stddev
        self.bn_momentum, self.bn_epsilon, self.leaky_slope = bn_momentum, bn_epsilon, leaky_slope
        init = conv_init(init_stddev)
        if preset == "tensorlayer":
            tower = [(disc_feat * 2 ** i, 4, 2) for i in range(6)]
            tower += [(disc_feat * 16, 1, 1), (disc_feat * 8, 1, 1)]
            branch = [(disc_feat * 2, 1), (disc_feat * 2, 3), (disc_feat * 8, 3)]
        else:
            tower = [(disc_feat, 3, 1)] + [(disc_feat * 2 ** (i // 2), 3, 1 + i % 2)
                                            for i in range(1, 8)]
            branch = []
        self.tower_depth, self.branch_depth = len(tower), len(branch)
        # Layer i: conv (bias only where no BN follows, i.e. the first), BN (except the first).
        set_layers(self, "conv", [keras.layers.Conv2D(f, k, s, padding="same", use_bias=(i == 0),
                                                      kernel_initializer=init, name=f"conv{i}")
                                  for i, (f, k, s) in enumerate(tower)])
        for i in range(1, len(tower)):
            setattr(self, f"bn{i}", batch_norm(init_stddev, bn_momentum, bn_epsilon, name=f"bn{i}"))
        set_layers(self, "res_conv", [keras.layers.Conv2D(f, k, padding="same", use_bias=False,
                                                          kernel_initializer=init,
                                                          name=f"res_conv{i}")
                                      for i, (f, k) in enumerate(branch)])
        set_layers(self, "res_bn", [batch_norm(init_stddev, bn_momentum, bn_epsilon,
                                               name=f"res_bn{i}") for i in range(len(branch))])
        self.flatten = keras.layers.Flatten()
        self.dense_hidden = None if preset == "tensorlayer" else keras.layers.Dense(
            disc_feat * 16, kernel_initializer=init, name="dense_hidden")
        self.dense_logit = keras.layers.Dense(1, kernel_initializer=init, name="dense_logit")
        self.lrelu = keras.layers.LeakyReLU(negative_slope=leaky_slope)

    def call(self, x, training=False):
        last = self.tower_depth - 1
        tower = zip(get_layers(self, "conv", self.tower_depth), get_layers(self, "bn", self.tower_depth))
        for i, (conv, bn) in enumerate(tower):
            x = conv(x)
            if bn is not None:
                x = bn(x, training=training)
            # TensorLayer: the last 1x1 (512) has no activation before the residual add.
            if not (self.branch_depth and i == last):
                x = self.lrelu(x)
        if self.branch_depth:
            y = x
            branch = zip(get_layers(self, "res_conv", self.branch_depth),
                         get_layers(self, "res_bn", self.branch_depth))
            for i, (conv, bn) in enumerate(branch):
                y = bn(conv(y), training=training)
                if i < self.branch_depth - 1:
                    y = self.lrelu(y)
            x = self.lrelu(x + y)
        x = self.flatten(x)
        if self.dense_hidden is not None:
            x = self.lrelu(self.dense_hidden(x))
        return self.dense_logit(x)

    def get_config(self):
        return {"preset": self.preset, "disc_feat": self.disc_feat,
                "init_stddev": self.init_stddev, "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon, "leaky_slope": self.leaky_slope, "name": self.name}
