"""The SRGAN generator (SRResNet), x4."""

import keras

from srgan_tf.config import PRESETS
from srgan_tf.models.blocks import (SHUFFLE, FoldedConv2D, ResidualBlock, Upsample, activation,
                                    batch_norm, conv_init, get_layers, set_layers)

# preset -> (first/last kernel size, activation). TensorLayer get_G: 3x3 in, 1x1 out, ReLU.
# Paper Fig. 4: 9x9 in and out, PReLU.
_SHAPES = {"tensorlayer": (3, 1, "relu"), "paper": (9, 9, "prelu")}
# Space-to-depth block of the last conv (FoldedConv2D) where its kernel is at least this size:
# the paper's 9x9 conv to 3 channels at HR runs ~2x faster, forward + backward, on a 2x2-folded
# grid (docs/benchmarks.md). The first 9x9 conv (3 -> 64 at LR) runs near the ceiling as it is.
# A fold equal to the pixel-shuffle factor lets the last conv read the shuffle's input grid.
_FOLD_KERNEL, _FOLD = 5, SHUFFLE


@keras.saving.register_keras_serializable(package="srgan_tf")
class Generator(keras.Model):
    """SRResNet generator: conv - residual blocks - conv-BN + long skip - 2 x (conv, x2 shuffle) - conv, tanh.

    Fully convolutional: takes any H x W.

    Args:
      preset: "tensorlayer" (tensorlayer/srgan get_G: 1,518,147 parameters) or "paper"
        (Ledig et al. Fig. 4: 9x9 first/last conv, PReLU; the last one computed by FoldedConv2D,
        with Conv2D's variables, straight from the last pixel shuffle's input grid).
      num_feat: channels of the residual trunk.
      num_block: number of residual blocks.
      upsample_feat: conv channels before each x2 pixel shuffle.
      init_stddev: std of the N(0, s) kernel init and of the N(1, s) BatchNorm gamma init.
      bn_momentum, bn_epsilon: BatchNorm settings.
      icnr: ICNR initialisation of the convs before each pixel shuffle (against checkerboard
        artifacts; Aitken et al. 2017) instead of the recipe's N(0, init_stddev).
    Call:
      x: float32 [B, H, W, 3] in [-1, 1]. Returns float [B, 4H, 4W, 3] in [-1, 1] (tanh).
    """

    def __init__(self, preset="tensorlayer", num_feat=64, num_block=16, upsample_feat=256,
                 init_stddev=0.02, bn_momentum=0.9, bn_epsilon=1e-5, icnr=False, **kwargs):
        super().__init__(**kwargs)
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset, self.num_feat, self.num_block = preset, num_feat, num_block
        self.upsample_feat, self.init_stddev = upsample_feat, init_stddev
        self.bn_momentum, self.bn_epsilon, self.icnr = bn_momentum, bn_epsilon, icnr
        first_k, last_k, act = _SHAPES[preset]
        init = conv_init(init_stddev)
        self.conv_first = keras.layers.Conv2D(num_feat, first_k, padding="same",
                                              kernel_initializer=init, name="conv_first")
        self.act_first = activation(act, name="act_first")
        set_layers(self, "block", [ResidualBlock(num_feat, act, init_stddev, bn_momentum,
                                                 bn_epsilon, name=f"block{i}")
                                   for i in range(num_block)])
        self.conv_body = keras.layers.Conv2D(num_feat, 3, padding="same", use_bias=False,
                                             kernel_initializer=init, name="conv_body")
        self.bn_body = batch_norm(init_stddev, bn_momentum, bn_epsilon, name="bn_body")
        set_layers(self, "upsample", [Upsample(upsample_feat, act, init_stddev, icnr,
                                                       name=f"upsample{i}")
                                      for i in range(2)])
        last = dict(padding="same", activation="tanh", kernel_initializer=init, name="conv_last")
        self.conv_last = (FoldedConv2D(3, last_k, fold=_FOLD, **last) if last_k >= _FOLD_KERNEL
                          else keras.layers.Conv2D(3, last_k, **last))

    def call(self, x, training=False):
        feat = self.act_first(self.conv_first(x))
        y = feat
        for block in get_layers(self, "block", self.num_block):
            y = block(y, training=training)
        y = feat + self.bn_body(self.conv_body(y), training=training)
        *upsamples, last = get_layers(self, "upsample", 2)
        for upsample in upsamples:
            y = upsample(y)
        if isinstance(self.conv_last, FoldedConv2D) and self.conv_last.fold == SHUFFLE:
            # The last conv reads the last pixel shuffle's input grid: no shuffle round trip.
            return self.conv_last.call_on_blocks(last(y, shuffle=False))
        return self.conv_last(last(y))

    def get_config(self):
        return {"preset": self.preset, "num_feat": self.num_feat, "num_block": self.num_block,
                "upsample_feat": self.upsample_feat, "init_stddev": self.init_stddev,
                "bn_momentum": self.bn_momentum, "bn_epsilon": self.bn_epsilon,
                "icnr": self.icnr, "name": self.name}
