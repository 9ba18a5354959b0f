"""VGG19 feature extractor: layers, sizes, preprocessing, weights handling."""

import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import features


def test_tensorlayer_features_are_pool4_at_224(vgg_random):
    vgg = features.VGGFeatures("block4_pool", 224, vgg=vgg_random)
    out = vgg(tf.random.uniform([2, 96, 96, 3], -1, 1))
    assert out.shape == (2, 14, 14, 512)


def test_paper_features_are_vgg54_on_the_patch(vgg_random):
    vgg = features.VGGFeatures("block5_conv4", None, vgg=vgg_random)
    assert vgg(tf.random.uniform([1, 96, 96, 3], -1, 1)).shape == (1, 6, 6, 512)
    assert vgg(tf.random.uniform([1, 32, 48, 3], -1, 1)).shape == (1, 2, 3, 512)


def test_input_scaling_is_keras_vgg_preprocessing(vgg_random):
    import keras
    vgg = features.VGGFeatures("block1_conv1", None, vgg=vgg_random)
    x = tf.random.uniform([1, 8, 8, 3], -1, 1, seed=3)
    expected = vgg.extractor(keras.applications.vgg19.preprocess_input((x.numpy() + 1) * 127.5))
    np.testing.assert_allclose(vgg(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)


def test_features_are_frozen(vgg_random):
    vgg = features.VGGFeatures("block4_pool", 32, vgg=vgg_random)
    assert vgg.trainable_variables == []


def test_lfs_pointer_gives_a_clear_error(tmp_path):
    path = tmp_path / "vgg19_notop.h5"
    path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 80134624\n")
    with pytest.raises(ValueError, match="git-lfs pointer"):
        features.load_vgg19(str(path))


def test_html_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "vgg19.h5"
    path.write_bytes(b"<!DOCTYPE html><html>Not Found</html>")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        features.load_vgg19(str(path))


def test_local_weights_file_loads(tmp_path, vgg_random):
    path = str(tmp_path / "vgg19_weights_notop.h5")
    vgg_random.save_weights(path.replace(".h5", ".weights.h5"))
    loaded = features.load_vgg19(path.replace(".h5", ".weights.h5"))
    x = tf.random.uniform([1, 32, 32, 3])
    np.testing.assert_allclose(loaded(x).numpy(), vgg_random(x).numpy(), rtol=1e-6)


def write_legacy_notop_h5(vgg, path):
    """Writes `vgg`'s weights in the layout of Keras's download
    vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (Keras 1/2 HDF5 weights file): root attribute
    `layer_names` (every layer, the input included), one group per layer with attribute
    `weight_names` (empty for layers without weights) and one dataset per weight, named
    "<layer>_W_1:0" (kernel) and "<layer>_b_1:0" (bias)."""
    import h5py
    names = ["input_1"] + [layer.name for layer in vgg.layers[1:]]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        for name, layer in zip(names, vgg.layers):
            group = f.create_group(name)
            weight_names = [f"{name}_{kind}_1:0" for kind in ("W", "b")[:len(layer.weights)]]
            for weight_name, weight in zip(weight_names, layer.weights):
                group.create_dataset(weight_name, data=weight.numpy())
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names], dtype="S")


def test_legacy_notop_h5_file_loads(tmp_path, vgg_random):
    path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_legacy_notop_h5(vgg_random, path)
    vgg = features.VGGFeatures("block5_conv4", None, weights=str(path))
    source = {w.path: w.numpy() for w in vgg_random.weights}
    loaded = {w.path: w.numpy() for w in vgg.extractor.weights}
    assert len(loaded) == len(source) == 32  # 16 convs: kernel and bias
    for name, value in source.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
