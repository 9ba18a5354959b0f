"""Layers shared by the generator and the discriminator."""

import keras
import numpy as np
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


def fold_kernel_index(kernel_size, channels_in, channels_out, fold):
    """Where each weight of a k x k kernel goes in the same conv on a space-to-depth grid.

    A stride-1 "same" k x k convolution of [B, H, W, C] equals an m x m "same" convolution of
    `space_to_depth(x, s)` to s*s*F channels, followed by `depth_to_space(., s)`: the blocks of
    zero padding, lo = ceil(((k - 1) // 2) / s) before and hi = ceil((k // 2) / s) after, differ
    by at most one, as "SAME" pads an m = lo + hi + 1 kernel. Output sub-pixel p of block I reads
    input sub-pixel q of block I + a - lo through tap d = s * (a - lo) + q - p + (k - 1) // 2 of
    the original kernel.

    Args:
      kernel_size: k of the original kernel.
      channels_in, channels_out: C and F of the original kernel [k, k, C, F].
      fold: s, the space-to-depth block size.
    Returns:
      int32 [m, m, s*s*C, s*s*F]: indices into the flattened original kernel followed by one
      zero (index k*k*C*F).
    """
    k, c, f, s = kernel_size, channels_in, channels_out, fold
    before = (k - 1) // 2
    lo, hi = -(-before // s), -(-(k - 1 - before) // s)  # ceil divisions
    blocks, sub = np.arange(lo + hi + 1), np.arange(s)
    tap = (s * (blocks[:, None, None] - lo) + sub[None, :, None] - sub[None, None, :]
           + before)  # [a, q, p]
    dy = tap[:, None, :, None, None, :, None, None]  # -> [a, b, qy, qx, c, py, px, f]
    dx = tap[None, :, None, :, None, None, :, None]
    ch = np.arange(c)[:, None, None, None]
    out = np.arange(f)
    index = ((dy * k + dx) * c + ch) * f + out
    index = np.where((dy >= 0) & (dy < k) & (dx >= 0) & (dx < k), index, k * k * c * f)
    m = lo + hi + 1
    return index.reshape(m, m, s * s * c, s * s * f).astype(np.int32)


FOLDED_OP_PREFIX = "folded_conv"


def folded_op_name(kernel_size, fold):
    """Name of the Conv2D op of a FoldedConv2D, from which `bench` counts the original's FLOPs."""
    return f"{FOLDED_OP_PREFIX}_k{kernel_size}_s{fold}"


def same_conv_matmul_gradient(x, kernel, name=None):
    """`tf.nn.conv2d(x, kernel, 1, "SAME")`, whose gradients are two matmuls instead of convs.

    For a conv with few output channels F, the kernel gradient (and on some CPUs the input
    gradient) runs far below oneDNN's convolution rate: on an AVX2 CPU the folded last conv of the
    paper generator (5x5, 256 -> 12) took 3x longer forward + backward than with this gradient
    (docs/benchmarks.md). Both gradients read one tensor: the upstream gradient g shifted by each
    of the m x m taps, `shifted[q, t, f] = g[q - t + before, f]` (zero outside), [N, m*m*F]:

      kernel gradient = x^T @ shifted            ([C, N] @ [N, m*m*F])
      input gradient  = shifted @ kernel^T       ([N, m*m*F] @ [m*m*F, C])

    the same sums as the convolutions', in another order (equal within float rounding). The
    backward pass keeps what autodiff's keeps (x and the kernel), and builds `shifted` (m*m*F
    values per position) only while it runs.

    Args:
      x: float [B, H, W, C].
      kernel: [m, m, C, F] of x's dtype.
      name: name of the forward Conv2D op.
    Returns:
      float [B, H, W, F].
    """
    m = kernel.shape[0]
    before = (m - 1) // 2  # where "SAME" puts its zeros for stride 1: the extra one after

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(upstream):
            height, width = tf.shape(upstream)[1], tf.shape(upstream)[2]
            channels, filters = kernel.shape[2], kernel.shape[3]
            padded = tf.pad(upstream, [[0, 0], [m - 1 - before, before], [m - 1 - before, before],
                                       [0, 0]])
            shifted = tf.reshape(tf.concat(
                [padded[:, m - 1 - ty:m - 1 - ty + height, m - 1 - tx:m - 1 - tx + width, :]
                 for ty in range(m) for tx in range(m)], -1), [-1, m * m * filters])
            rows = tf.reshape(x, [-1, channels])
            dkernel = tf.transpose(tf.reshape(tf.matmul(rows, shifted, transpose_a=True),
                                              [channels, m, m, filters]), [1, 2, 0, 3])
            by_tap = tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [m * m * filters, channels])
            return tf.reshape(tf.matmul(shifted, by_tap), tf.shape(x)), dkernel

        return tf.nn.conv2d(x, kernel, 1, "SAME", name=name), grad

    return conv(x, kernel)


@keras.saving.register_keras_serializable(package="srgan_tf")
class FoldedConv2D(keras.layers.Conv2D):
    """Keras Conv2D that computes a "same" k x k conv with few filters on a space-to-depth grid.

    A 9x9 conv from 64 channels to 3 runs at a few percent of the CPU's convolution throughput:
    three output channels are the worst case for oneDNN's blocked kernels, forward and backward.
    The same conv on `space_to_depth(x, fold)` has fold^2 times the channels in and out and a
    smaller kernel (5x5 for 9x9 and fold 2), whose weights are the original ones gathered by
    `fold_kernel_index` (and zeros): more multiply-adds (1.23x for 9x9, fold 2), at a much higher
    rate. It computes what Conv2D computes, within float rounding, forward and backward.

    The variables are Conv2D's own (same names and shapes: `kernel` [k, k, C, F], `bias` [F]), so
    checkpoints, `.keras` files and SavedModels are those of a Conv2D. Strides, dilation, groups,
    "valid" padding and channels_first take Conv2D's path unchanged. Any H x W: the input is
    zero-padded to whole blocks and the output cropped.

    Args:
      fold: space-to-depth block size (>= 1; 1 is Conv2D's own path).
      *args, **kwargs: those of keras.layers.Conv2D.
    """

    # False: the convolutions' own gradients (benchmarks/peer_srresnet.py --conv_gradient times
    # both); True: `same_conv_matmul_gradient`'s, 1.28-1.32x faster for the whole paper step on
    # AVX2 and within 7% either way on AVX-512 / AMX CPUs (docs/benchmarks.md), so on everywhere.
    matmul_gradient = True

    def __init__(self, *args, fold=2, **kwargs):
        super().__init__(*args, **kwargs)
        if fold < 1:
            raise ValueError(f"fold must be >= 1, got {fold}")
        self.fold = fold

    def _folds(self):
        return (self.fold > 1 and self.padding == "same" and self.data_format == "channels_last"
                and self.groups == 1 and tuple(self.strides) == (1, 1)
                and tuple(self.dilation_rate) == (1, 1)
                and self.kernel_size[0] == self.kernel_size[1])

    def _conv_blocks(self, blocks, kernel):
        """blocks: float [B, h, w, s*s*C], space_to_depth of the input; kernel: [k, k, C, F].

        Returns float [B, h, w, s*s*F], whose depth_to_space is the "same" conv of the input.
        """
        k, s = self.kernel_size[0], self.fold
        index = fold_kernel_index(k, kernel.shape[2], kernel.shape[3], s)
        flat = tf.concat([tf.reshape(kernel, [-1]), tf.zeros([1], kernel.dtype)], 0)
        folded = tf.gather(flat, index)  # [m, m, s*s*C, s*s*F]
        # "SAME" pads the blocks of zeros the fold needs (fold_kernel_index): no Pad pass.
        if self.matmul_gradient:
            return same_conv_matmul_gradient(blocks, folded, name=folded_op_name(k, s))
        return tf.nn.conv2d(blocks, folded, 1, "SAME", name=folded_op_name(k, s))

    def convolution_op(self, inputs, kernel):
        """inputs: float [B, H, W, C]; kernel: [k, k, C, F] -> float [B, H, W, F]."""
        if not self._folds():
            return super().convolution_op(inputs, kernel)
        s = self.fold
        height, width = tf.shape(inputs)[1], tf.shape(inputs)[2]
        x = tf.pad(inputs, [[0, 0], [0, (-height) % s], [0, (-width) % s], [0, 0]])  # whole blocks
        y = self._conv_blocks(tf.nn.space_to_depth(x, s), kernel)
        return tf.nn.depth_to_space(y, s)[:, :height, :width, :]

    def call_on_blocks(self, blocks):
        """Returns `self(tf.nn.depth_to_space(blocks, self.fold))` without the shuffles.

        blocks: float [B, h, w, fold^2 * C], as a pixel shuffle x`fold` takes it (depth_to_space
        puts channel (i * fold + j) * C + c at sub-pixel (i, j) of channel c). The folded conv
        reads that grid directly, so a pixel shuffle followed by this layer costs no
        depth_to_space / space_to_depth round trip. Output: float [B, fold*h, fold*w, F].
        """
        s = self.fold
        if not self.built:
            self.build([None, None, None, blocks.shape[-1] // s ** 2])
        if not self._folds():
            return self(tf.nn.depth_to_space(blocks, s))
        y = self._conv_blocks(blocks, tf.cast(self.kernel, blocks.dtype))
        if self.use_bias:  # the bias of output channel f, at each of its s*s sub-pixels
            y = y + tf.tile(tf.cast(self.bias, y.dtype), [s * s])
        if self.activation is not None:  # elementwise: commutes with depth_to_space
            y = self.activation(y)
        return tf.nn.depth_to_space(y, s)

    def get_config(self):
        return {**super().get_config(), "fold": self.fold}


@keras.saving.register_keras_serializable(package="srgan_tf")
class BatchNorm(keras.layers.BatchNormalization):
    """Keras BatchNormalization that trains with TensorFlow's fused kernel on NHWC tensors.

    Keras 3 normalises with separate moments, normalise and scale ops, upcast to float32.
    FusedBatchNormV3 does the forward and the backward pass in one kernel each (oneDNN on CPU,
    cuDNN on GPU) and reads bfloat16 / float16 inputs directly, with float32 statistics. The
    variables and the moving-average update are Keras's own (with the biased batch variance, as
    Keras keeps it), so checkpoints and .keras files are the same as with the Keras layer.

    Inference, synchronized (cross-replica) statistics, masks, renorm and inputs that are not
    [B, H, W, C] take the Keras path.
    """

    _FUSED_DTYPES = (tf.float32, tf.bfloat16, tf.float16)

    def _fusable(self, inputs, training, mask):
        return (training is True and self.trainable and mask is None and not self.synchronized
                and not self.renorm and self.scale and self.center and len(inputs.shape) == 4
                and self.axis in (-1, 3) and inputs.dtype in self._FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
            mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n - 1) batch variance; Keras averages the biased one.
        count = tf.cast(tf.size(inputs, out_type=tf.int64) // tf.shape(inputs, out_type=tf.int64)[-1],
                        tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def batch_norm(stddev, momentum, epsilon, name=None):
    """Returns a BatchNorm layer with gamma ~ N(1, stddev), as TensorLayer initialises it."""
    return BatchNorm(
        momentum=momentum, epsilon=epsilon,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=stddev), name=name)


def _per_channel(alpha):
    """True when `alpha` (a PReLU's slopes) has one slope per channel and nothing else."""
    return all(d == 1 for d in alpha.shape[:-1])


def _channel_sums(t):
    """Sums float [..., C] over all axes but the last, as one matmul by a row of ones.

    On a CPU, oneDNN's matmul is 2-3x faster than `tf.reduce_sum` over the leading axes at the
    paper generator's last PReLU (`benchmarks/prelu.py`, docs/benchmarks.md). The products
    accumulate in float32 under bf16 and float16, as the reduction's do.
    """
    channels = t.shape[-1]
    rows = tf.reshape(t, [-1, channels])
    ones = tf.ones(tf.stack([1, tf.shape(rows)[0]]), t.dtype)
    return tf.reshape(tf.matmul(ones, rows), [channels])


@tf.custom_gradient
def prelu(x, alpha):
    """PReLU by one select, whose gradient reuses the forward's sign mask.

    Autodiff of `where(x > 0, x, alpha * x)` differentiates both branches of the select (two
    selects, a multiply and their sum for the input, a multiply, a select and a sum for the
    slopes); here the input gradient is one select of (upstream, alpha * upstream), and the slope
    gradient one masked product summed per channel. The backward pass keeps what autodiff's
    keeps: x, alpha and the mask.

    Args:
      x: float [..., C].
      alpha: float [1, ..., 1, C] of x's dtype, one slope per channel.
    Returns:
      float [..., C]: x where x > 0, else alpha * x.
    """
    positive = x > 0

    def grad(upstream):
        dx = tf.where(positive, upstream, alpha * upstream)
        dalpha = _channel_sums(tf.where(positive, tf.zeros([], upstream.dtype), x * upstream))
        return dx, tf.reshape(dalpha, tf.shape(alpha))

    return tf.where(positive, x, alpha * x), grad


@keras.saving.register_keras_serializable(package="srgan_tf")
class PReLU(keras.layers.PReLU):
    """Keras's PReLU (same `alpha` variable) computed as one select: x where x > 0, else alpha * x.

    Keras computes relu(x) - alpha * relu(-x), four elementwise passes and their gradients; in
    bf16 on a CPU those passes were a measurable part of the paper generator's step
    (docs/benchmarks.md). With one slope per channel (the generator's `shared_axes=[1, 2]`) the
    gradient is `prelu`'s, which reuses the forward's sign mask. The values and the gradients are
    Keras's, except the input gradient at exactly x = 0 (alpha here, 0 in Keras), a point of
    measure zero.
    """

    # False: autodiff of the select (benchmarks/peer_srresnet.py --autodiff_prelu times both).
    mask_gradient = True

    def _select(self, x, alpha):
        if self.mask_gradient and _per_channel(alpha):
            return prelu(x, alpha)
        return tf.where(x > 0, x, alpha * x)

    def call(self, inputs):
        return self._select(inputs, tf.cast(self.alpha, inputs.dtype))

    def call_on_blocks(self, blocks, fold):
        """Returns `space_to_depth(self(depth_to_space(blocks, fold)), fold)` without the shuffles.

        blocks: float [B, h, w, fold^2 * C]; channel (i * fold + j) * C + c gets alpha[c].
        """
        if not self.built:
            self.build([None, None, None, blocks.shape[-1] // fold ** 2])
        alpha = tf.tile(tf.cast(self.alpha, blocks.dtype), [1] * (len(self.alpha.shape) - 1)
                        + [fold ** 2])
        return self._select(blocks, alpha)


def activation(kind, name=None):
    """Returns the generator's activation layer: "relu" or "prelu" (one slope per channel)."""
    if kind == "prelu":
        return PReLU(shared_axes=[1, 2], name=name)
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


SHUFFLE = 2  # Upsample's pixel-shuffle factor


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

    def call(self, x, shuffle=True):
        """x: float [B, H, W, C]. With shuffle=False, returns the activations before the pixel
        shuffle, [B, H, W, filters] (their depth_to_space is the shuffled output)."""
        y = self.conv(x)
        if shuffle:
            return self.act_layer(tf.nn.depth_to_space(y, SHUFFLE))
        if isinstance(self.act_layer, PReLU):  # one slope per shuffled channel
            return self.act_layer.call_on_blocks(y, SHUFFLE)
        return self.act_layer(y)  # ReLU: elementwise, without weights

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
