"""The PyTorch SRResNet generator `_NetG` of twtygqyy/pytorch-SRResNet, for timing only.

Source: https://github.com/twtygqyy/pytorch-SRResNet, file srresnet.py (commit d715729,
"model update"), MIT License, Copyright (c) 2017- Jiu XU, Rakuten, Inc. and Rakuten Institute of
Technology. Re-typed here with the same architecture, layer for layer: 9x9 conv 3->64 (no bias),
LeakyReLU 0.2, 16 residual blocks (conv3x3 - InstanceNorm(affine) - LeakyReLU - conv3x3 -
InstanceNorm, plus identity), conv3x3 - InstanceNorm plus the long skip, twice (conv3x3 64->256,
pixel shuffle x2, LeakyReLU), 9x9 conv 64->3 (no bias); convs initialised N(0, sqrt(2 / n)) with
n = k * k * out_channels. Only the generator is kept.

The MIT licence of the original:

  Permission is hereby granted, free of charge, to any person obtaining a copy of this software
  and associated documentation files (the "Software"), to deal in the Software without
  restriction, including without limitation the rights to use, copy, modify, merge, publish,
  distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
  Software is furnished to do so, subject to the following conditions: The above copyright notice
  and this permission notice shall be included in all copies or substantial portions of the
  Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
  INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE
  AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
  DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
  OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

import math

from torch import nn


def _conv(channels_in, channels_out, kernel):
    return nn.Conv2d(channels_in, channels_out, kernel, stride=1, padding=kernel // 2, bias=False)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - LReLU - conv3x3 - IN, plus the identity. [B, 64, H, W] -> same."""

    def __init__(self, feat=64):
        super().__init__()
        self.body = nn.Sequential(_conv(feat, feat, 3), nn.InstanceNorm2d(feat, affine=True),
                                  nn.LeakyReLU(0.2, inplace=True), _conv(feat, feat, 3),
                                  nn.InstanceNorm2d(feat, affine=True))

    def forward(self, x):
        return x + self.body(x)


class NetG(nn.Module):
    """SRResNet x4 of pytorch-SRResNet. float32 [B, 3, H, W] -> [B, 3, 4H, 4W] (no output activation)."""

    def __init__(self, feat=64, blocks=16):
        super().__init__()
        self.conv_input = _conv(3, feat, 9)
        self.relu = nn.LeakyReLU(0.2, inplace=True)
        self.residual = nn.Sequential(*[ResidualBlock(feat) for _ in range(blocks)])
        self.conv_mid = _conv(feat, feat, 3)
        self.bn_mid = nn.InstanceNorm2d(feat, affine=True)
        self.upscale4x = nn.Sequential(
            _conv(feat, 4 * feat, 3), nn.PixelShuffle(2), nn.LeakyReLU(0.2, inplace=True),
            _conv(feat, 4 * feat, 3), nn.PixelShuffle(2), nn.LeakyReLU(0.2, inplace=True))
        self.conv_output = _conv(feat, 3, 9)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / n))

    def forward(self, x):
        out = self.relu(self.conv_input(x))
        out = out + self.bn_mid(self.conv_mid(self.residual(out)))
        return self.conv_output(self.upscale4x(out))
