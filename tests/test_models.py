"""Generator and discriminator: shapes, ranges, parameter counts, saving."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import Discriminator, Generator
from srgan_tf.models.blocks import batch_norm


def _count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_tensorlayer_generator_has_recipe_parameter_count():
    g = Generator("tensorlayer")
    g(tf.zeros([1, 8, 8, 3]))
    assert _count(g) == 1_518_147


def test_paper_generator_parameter_count():
    # 9x9 convs and one PReLU slope per channel: 1,518,147 + 9x9 kernels - 3x3/1x1 ones + PReLUs.
    g = Generator("paper")
    g(tf.zeros([1, 8, 8, 3]))
    first = 9 * 9 * 3 * 64 + 64 - (3 * 3 * 3 * 64 + 64)
    last = 9 * 9 * 64 * 3 + 3 - (64 * 3 + 3)
    prelus = 64 * (1 + 16) + 64 * 2
    assert _count(g) == 1_518_147 + first + last + prelus


@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
@pytest.mark.parametrize("h,w", [(8, 8), (5, 11), (24, 24)])
def test_generator_is_fully_convolutional_x4_in_range(preset, h, w):
    g = Generator(preset, num_feat=8, num_block=2, upsample_feat=32)
    x = tf.random.uniform([2, h, w, 3], -1, 1, seed=1)
    for training in (False, True):
        y = g(x, training=training)
        assert y.shape == (2, 4 * h, 4 * w, 3)
        assert float(tf.reduce_min(y)) >= -1 and float(tf.reduce_max(y)) <= 1


@pytest.mark.parametrize("preset,crop", [("tensorlayer", 96), ("tensorlayer", 64),
                                         ("paper", 96), ("paper", 32)])
def test_discriminator_returns_one_logit_per_image(preset, crop):
    d = Discriminator(preset, disc_feat=4)
    logits = d(tf.random.uniform([3, crop, crop, 3], -1, 1), training=True)
    assert logits.shape == (3, 1)
    assert np.all(np.isfinite(logits.numpy()))


def test_tensorlayer_discriminator_layout():
    d = Discriminator("tensorlayer")
    d(tf.zeros([1, 384, 384, 3]))
    kernels = [v.shape for v in d.trainable_variables if len(v.shape) == 4]
    assert [k[:2] for k in kernels[:6]] == [(4, 4)] * 6
    assert [k[-1] for k in kernels] == [64, 128, 256, 512, 1024, 2048, 1024, 512, 128, 128, 512]
    assert d.dense_logit.kernel.shape == (6 * 6 * 512, 1)


def test_paper_discriminator_layout():
    d = Discriminator("paper")
    d(tf.zeros([1, 96, 96, 3]))
    kernels = [v.shape for v in d.trainable_variables if len(v.shape) == 4]
    assert [k[-1] for k in kernels] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert d.dense_hidden.kernel.shape == (6 * 6 * 512, 1024)


def test_initialisation_follows_recipe():
    g = Generator("tensorlayer")
    g(tf.zeros([1, 8, 8, 3]))
    kernel = g.block0.conv1.kernel.numpy()
    gamma = g.block0.bn1.gamma.numpy()
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    assert abs(gamma.mean() - 1.0) < 0.01 and 0.01 < gamma.std() < 0.03
    assert g.block0.conv1.bias is None  # bias-free convs inside residual blocks


@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
def test_keras_file_round_trip(tmp_path, preset):
    g = Generator(preset, num_feat=8, num_block=2, upsample_feat=32)
    x = tf.random.uniform([1, 7, 9, 3], -1, 1, seed=2)
    g(x, training=True)  # moves BN statistics away from their init
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Generator) and loaded.preset == preset
    np.testing.assert_array_equal(loaded(x).numpy(), g(x).numpy())


@pytest.mark.parametrize("model", [Generator("paper", num_feat=8, num_block=3, upsample_feat=32),
                                   Discriminator("tensorlayer", disc_feat=4),
                                   Discriminator("paper", disc_feat=4)])
def test_checkpoint_holds_every_variable(tmp_path, model):
    # Keras 3 lists are invisible to tf.train.Checkpoint: every variable, BN statistics
    # included, must still be saved and restored.
    shape = [1, 8, 8, 3] if isinstance(model, Generator) else [1, 64, 64, 3]
    model(tf.zeros(shape))
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = {name for name, _ in tf.train.list_variables(path)}
    assert len([n for n in saved if n.startswith("model/")]) == len(model.variables)
    originals = [v.numpy() for v in model.variables]
    for v in model.variables:
        v.assign(tf.zeros_like(v))
    tf.train.Checkpoint(model=model).read(path).assert_consumed()
    for v, original in zip(model.variables, originals):
        np.testing.assert_array_equal(v.numpy(), original)


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="preset must be one of tensorlayer, paper, got 'srgan'"):
        Generator("srgan")
    with pytest.raises(ValueError, match="got 'x'"):
        Discriminator("x")


def test_icnr_starts_the_pixel_shuffle_as_nearest_neighbour():
    from srgan_tf.models.blocks import Upsample
    layer = Upsample(filters=32, icnr=True)
    x = tf.random.uniform([1, 5, 6, 4], -1, 1, seed=4)
    y = layer(x).numpy()
    assert y.shape == (1, 10, 12, 8)
    blocks = y.reshape(1, 5, 2, 6, 2, 8)
    np.testing.assert_allclose(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape),
                               atol=1e-6)
    plain = Upsample(filters=32)(x).numpy().reshape(1, 5, 2, 6, 2, 8)
    assert np.abs(plain - plain[:, :, :1, :, :1]).max() > 1e-3


def test_icnr_generator_round_trips(tmp_path):
    g = Generator(num_feat=8, num_block=1, upsample_feat=32, icnr=True)
    x = tf.random.uniform([1, 6, 6, 3], -1, 1)
    g(x)
    g.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"))
    assert loaded.icnr
    np.testing.assert_array_equal(loaded(x).numpy(), g(x).numpy())


def _bn_pair(shape, dtype_policy="float32"):
    """A srgan_tf BatchNorm and a Keras BatchNormalization with the same weights."""
    fused = batch_norm(0.02, 0.9, 1e-5, name="fused")
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype_policy)
    fused = type(fused).from_config({**fused.get_config(), "dtype": dtype_policy})
    fused.build(shape)
    plain.build(shape)
    fused.set_weights([np.random.RandomState(0).normal(1, 0.1, shape[-1]).astype("float32"),
                       np.full(shape[-1], 0.3, "float32"), np.full(shape[-1], 0.1, "float32"),
                       np.full(shape[-1], 2.0, "float32")])
    plain.set_weights(fused.get_weights())
    return fused, plain


@pytest.mark.parametrize("policy,tol", [("float32", 1e-5), ("mixed_bfloat16", 3e-2)])
def test_fused_batch_norm_matches_keras(policy, tol):
    # Same outputs, gradients and moving statistics as Keras's BatchNormalization, in training
    # and inference, for float32 and bfloat16 inputs.
    x = tf.random.normal([4, 6, 5, 8], 0.5, 2.0, seed=3)
    probe = tf.random.normal(x.shape, seed=4)  # a loss whose input gradient is not ~0 under BN
    fused, plain = _bn_pair(x.shape, policy)
    for training in (True, False):
        grads = []
        for layer in (fused, plain):
            with tf.GradientTape() as tape:
                xc = tf.cast(x, layer.compute_dtype)
                tape.watch(xc)
                y = layer(xc, training=training)
                loss = tf.reduce_mean(tf.cast(y, tf.float32) * probe)
            grads.append([tf.cast(g, tf.float32) for g in
                          tape.gradient(loss, [xc, *layer.trainable_weights])])
            assert y.dtype == layer.compute_dtype
        np.testing.assert_allclose(fused(xc, training=False), plain(xc, training=False),
                                   atol=tol * 4, rtol=tol)
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, atol=tol * float(tf.reduce_max(tf.abs(b))), rtol=tol)
        for a, b in zip(fused.get_weights(), plain.get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=tol)
    assert not np.allclose(fused.get_weights()[2], 0.1)  # the moving mean did move


def _ops_of(layer, x, training):
    """The op types of `layer`'s graph at `x`, one entry per op."""
    fn = tf.function(lambda t: layer(t, training=training))
    return [op.type for op in fn.get_concrete_function(x).graph.get_operations()]


def test_fused_batch_norm_runs_the_fused_kernel_only_where_it_can():
    x = tf.zeros([2, 4, 4, 8])
    fused, _ = _bn_pair(x.shape)
    assert "FusedBatchNormV3" in _ops_of(fused, x, training=True)
    assert "FusedBatchNormV3" not in _ops_of(fused, x, training=False)
    fused.synchronized = True  # cross-replica statistics: Keras's all-reduced moments
    assert "FusedBatchNormV3" not in _ops_of(fused, x, training=True)
    flat = batch_norm(0.02, 0.9, 1e-5)
    assert "FusedBatchNormV3" not in _ops_of(flat, tf.zeros([2, 8]), training=True)


def _conv_pair(filters, kernel, channels_in, fold, dtype_policy="float32", **kwargs):
    """A Conv2D and a FoldedConv2D with the same (random) weights, built for `channels_in`."""
    from srgan_tf.models.blocks import FoldedConv2D
    args = dict(padding="same", dtype=dtype_policy, bias_initializer="random_normal", **kwargs)
    plain = keras.layers.Conv2D(filters, kernel, **args)
    folded = FoldedConv2D(filters, kernel, fold=fold, **args)
    for layer in (plain, folded):
        layer.build([None, None, None, channels_in])
    folded.set_weights(plain.get_weights())
    return plain, folded


def _forward_backward(layer, x, grad_y, jit_compile=False):
    """(y, dy/dx, dy/dkernel, dy/dbias) of `layer` at `x` for the output gradient `grad_y`."""
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return [y] + tape.gradient(y, [x, layer.kernel, layer.bias],
                                   output_gradients=tf.cast(grad_y, y.dtype))
    return [t.numpy().astype(np.float32)
            for t in tf.function(run, jit_compile=jit_compile)(x)]


@pytest.mark.parametrize("h,w,kernel,channels_in,filters,fold", [
    (96, 96, 9, 64, 3, 2),  # the paper's last conv (batch 2)
    (7, 11, 9, 5, 3, 2),  # odd sizes: padded to whole blocks, cropped
    (5, 3, 9, 4, 3, 3),  # smaller than the kernel
    (13, 10, 4, 3, 2, 2),  # even kernel: "same" pads 1 before, 2 after
    (9, 9, 9, 3, 8, 4)])
@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("matmul_gradient", [True, False])
def test_folded_conv_computes_conv2d(h, w, kernel, channels_in, filters, fold, jit_compile,
                                     matmul_gradient, monkeypatch):
    from srgan_tf.models.blocks import FoldedConv2D
    monkeypatch.setattr(FoldedConv2D, "matmul_gradient", matmul_gradient)
    plain, folded = _conv_pair(filters, kernel, channels_in, fold)
    x = tf.random.normal([2, h, w, channels_in], seed=3)
    grad_y = tf.random.normal([2, h, w, filters], seed=4)
    expected = _forward_backward(plain, x, grad_y)
    got = _forward_backward(folded, x, grad_y, jit_compile)
    for name, e, g in zip(("y", "dx", "dkernel", "dbias"), expected, got):
        assert g.shape == e.shape
        # float32 rounding of sums of up to 81 x 64 x 2 products (96 x 96 x 2 for the kernel
        # gradient) summed in another order: measured up to 4e-6 of the largest value.
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-5 * np.abs(e).max(), err_msg=name)


@pytest.mark.parametrize("policy,tol", [("mixed_bfloat16", 2e-2), ("mixed_float16", 5e-3)])
def test_folded_conv_runs_under_mixed_precision(policy, tol):
    # Both layers are compared with a float32 Conv2D fed the same rounded inputs and weights:
    # Conv2D's own half-precision gradients may be the less accurate (measured on an AVX2 CPU in
    # bfloat16: 2.5% of the largest value for the kernel gradient, the folded conv's 0.9%), so the
    # folded conv must be within `tol` of the exact result, or at least as close as Conv2D.
    compute = keras.mixed_precision.Policy(policy).compute_dtype
    plain, folded = _conv_pair(3, 9, 8, 2, dtype_policy=policy)
    exact, _ = _conv_pair(3, 9, 8, 2)
    exact.set_weights([_rounded(w, compute) for w in plain.get_weights()])
    rng = np.random.default_rng(5)
    x = _rounded(rng.standard_normal([2, 10, 6, 8]), compute)
    grad_y = _rounded(rng.standard_normal([2, 10, 6, 3]), compute)
    expected = _forward_backward(exact, x, grad_y)
    by_plain = _forward_backward(plain, x, grad_y)
    got = _forward_backward(folded, x, grad_y)
    assert folded(x).dtype == plain(x).dtype == compute
    for name, e, p, g in zip(("y", "dx", "dkernel"), expected, by_plain, got):
        scale = np.abs(e).max()
        bound = max(tol, np.abs(p - e).max() / scale)
        assert np.abs(g - e).max() / scale <= bound, name
    # The bias gradient is Keras's own BiasAdd gradient, the same op in both layers.
    np.testing.assert_array_equal(got[3], by_plain[3])


def _rounded(value, dtype):
    """`value` rounded to `dtype` and back: a float32 array that `dtype` holds exactly."""
    return tf.cast(tf.cast(tf.constant(value, tf.float32), dtype), tf.float32).numpy()


def test_folded_conv_keeps_conv2d_paths_only_where_it_does_not_fold():
    from srgan_tf.models.blocks import FoldedConv2D
    strided, valid = FoldedConv2D(3, 9, strides=2, padding="same"), FoldedConv2D(3, 9)
    x = tf.random.normal([1, 12, 12, 4])
    for layer in (strided, valid):
        plain = keras.layers.Conv2D.from_config(
            {k: v for k, v in layer.get_config().items() if k != "fold"})
        layer.build(x.shape)
        plain.build(x.shape)
        plain.set_weights(layer.get_weights())
        np.testing.assert_array_equal(layer(x).numpy(), plain(x).numpy())
    with pytest.raises(ValueError, match="fold must be >= 1, got 0"):
        FoldedConv2D(3, 9, fold=0)


def test_paper_generator_keeps_conv2d_variables():
    # Checkpoints and .keras files name and shape conv_last's weights as a Conv2D's; only the
    # paper preset folds, the tensorlayer generator keeps Keras's own layer.
    from srgan_tf.models.blocks import FoldedConv2D
    paper, tensorlayer = Generator("paper"), Generator("tensorlayer")
    for g in (paper, tensorlayer):
        g(tf.zeros([1, 8, 8, 3]))
    assert isinstance(paper.conv_last, FoldedConv2D) and paper.conv_last.fold == 2
    assert type(tensorlayer.conv_last) is keras.layers.Conv2D
    assert [(v.path, tuple(v.shape)) for v in paper.conv_last.weights] == [
        (f"{paper.name}/conv_last/kernel", (9, 9, 64, 3)), (f"{paper.name}/conv_last/bias", (3,))]
    assert not isinstance(paper.conv_first, FoldedConv2D)


_MIRRORED = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.test_models import _conv_pair
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    plain, folded = _conv_pair(3, 9, 8, 2)
x = tf.random.normal([4, 10, 7, 8], seed=7)

@tf.function
def step(x):
    def replica(x):
        grads = []
        for layer in (plain, folded):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x) ** 2)
            grads.append(tape.gradient(loss, layer.kernel))
        return grads
    return strategy.run(replica, (x,))

batches = strategy.experimental_distribute_values_from_function(
    lambda ctx: x[2 * ctx.replica_id_in_sync_group:2 * ctx.replica_id_in_sync_group + 2])
expected, got = step(batches)
for e, g in zip(strategy.experimental_local_results(expected),
                strategy.experimental_local_results(got)):
    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=0, atol=1e-5 * np.abs(e.numpy()).max())
print("replicas", len(strategy.experimental_local_results(got)))
"""


def test_folded_conv_under_mirrored_strategy():
    # Logical devices must be set before TensorFlow initialises: a fresh process.
    from tests.conftest import REPO
    result = subprocess.run([sys.executable, "-c", _MIRRORED], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout


@pytest.mark.parametrize("policy,tol", [("float32", 1e-6), ("mixed_bfloat16", 1e-2),
                                        ("mixed_float16", 1e-2)])
def test_prelu_computes_keras_prelu(policy, tol):
    from srgan_tf.models.blocks import PReLU
    dtype = policy.replace("mixed_", "")
    ours = PReLU(shared_axes=[1, 2], dtype=policy)
    keras_prelu = keras.layers.PReLU(shared_axes=[1, 2], dtype=policy)
    x = tf.random.stateless_normal([2, 5, 7, 4], [1, 2])
    x = tf.where(tf.abs(x) < 1e-3, 0.5, x)  # no exact zeros: the one point where they differ
    ours.build(x.shape)
    keras_prelu.build(x.shape)
    alpha = tf.random.stateless_uniform([1, 1, 4], [3, 4], -0.5, 1.5)
    ours.alpha.assign(alpha)
    keras_prelu.alpha.assign(alpha)
    results = []
    for layer in (ours, keras_prelu):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.sin(x))
        results.append([y, *tape.gradient(loss, [x, layer.alpha])])
    assert results[0][0].dtype == dtype
    for a, b in zip(*results):
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32), rtol=tol,
                                   atol=tol)


def test_prelu_gradient_reuses_the_forward_mask():
    # Autodiff of the select differentiates both of its branches and adds them (AddN, two more
    # selects); prelu's gradient is one select for the input and one masked product for the
    # slopes, summed per channel by a matmul (faster than a Sum on CPUs).
    from srgan_tf.models.blocks import PReLU
    layer = PReLU(shared_axes=[1, 2])
    x = tf.zeros([2, 5, 7, 4])
    layer.build(x.shape)

    @tf.function
    def forward_backward(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = layer(t)
        return tape.gradient(y, [t, layer.alpha], output_gradients=tf.sin(t))

    ops = [op.type for op in forward_backward.get_concrete_function(x).graph.get_operations()]
    assert ops.count("Greater") == 1
    assert ops.count("SelectV2") == 3  # forward, input gradient, slope gradient
    assert ops.count("MatMul") == 1  # the per-channel sum
    assert "AddN" not in ops and "Sum" not in ops


def test_prelu_gradient_with_unknown_spatial_shape():
    # The serving signatures and the upscaler trace the generator with unknown batch, height and
    # width; the per-channel sum of the slope gradient must not need them.
    from srgan_tf.models.blocks import PReLU
    layer = PReLU(shared_axes=[1, 2])
    layer.build([None, None, None, 3])
    layer.alpha.assign([[[0.1, 0.2, 0.3]]])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3])])
    def slope_gradient(t):
        with tf.GradientTape() as tape:
            y = layer(t)
        return tape.gradient(y, layer.alpha, output_gradients=tf.ones_like(t))

    x = tf.random.stateless_normal([3, 5, 6, 3], [7, 8])
    expected = tf.reduce_sum(tf.minimum(x, 0.0), axis=[0, 1, 2])
    np.testing.assert_allclose(tf.reshape(slope_gradient(x), [3]), expected, rtol=1e-5)


def test_paper_generator_uses_our_prelu():
    from srgan_tf.models.blocks import PReLU
    paper = Generator("paper", num_block=1)
    paper(tf.zeros([1, 8, 8, 3]))
    assert isinstance(paper.act_first, PReLU)
    assert [v.path.split("/", 1)[1] for v in paper.act_first.weights] == ["act_first/alpha"]


def _paper_tail(policy):
    """upsample1 and conv_last of a paper generator with random weights (alphas around 0.3)."""
    g = Generator("paper", num_block=1, dtype=policy)
    g(tf.zeros([1, 8, 8, 3]))
    rng = np.random.RandomState(0)
    g.set_weights([rng.normal(0.3 if "alpha" in w.path else 0.0, 0.1, w.shape).astype("float32")
                   for w in g.weights])
    return g, g.upsample1, g.conv_last


@pytest.mark.parametrize("policy,tol", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_paper_tail_reads_the_pixel_shuffle_grid(policy, tol):
    # The paper generator's last conv reads the last upsample's pre-shuffle activations
    # (FoldedConv2D.call_on_blocks): the same outputs and gradients as conv_last(upsample(y)).
    _, upsample, conv_last = _paper_tail(policy)
    y = tf.cast(tf.random.stateless_normal([2, 7, 5, 64], [1, 2]), upsample.compute_dtype)
    weights = upsample.trainable_weights + conv_last.trainable_weights
    results = []
    for on_blocks in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(y)
            out = (conv_last.call_on_blocks(upsample(y, shuffle=False)) if on_blocks
                   else conv_last(upsample(y)))
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * tf.random.stateless_normal(
                out.shape, [5, 6]))
        assert out.shape == (2, 14, 10, 3) and out.dtype == upsample.compute_dtype
        results.append([out, *tape.gradient(loss, [y, *weights])])
    names = ["out", "dy"] + [w.path for w in weights]
    for name, e, g in zip(names, *results):
        e, g = np.asarray(tf.cast(e, tf.float32)), np.asarray(tf.cast(g, tf.float32))
        np.testing.assert_allclose(g, e, rtol=0, atol=tol * np.abs(e).max(), err_msg=name)


def test_paper_generator_has_no_pixel_shuffle_round_trip():
    paper, _, _ = _paper_tail("float32")
    ops = _ops_of(paper, tf.zeros([1, 6, 6, 3]), training=True)
    assert "SpaceToDepth" not in ops
    assert ops.count("DepthToSpace") == 2  # the first shuffle and conv_last's 3-channel output
    assert paper(tf.zeros([1, 6, 6, 3])).shape == (1, 24, 24, 3)
