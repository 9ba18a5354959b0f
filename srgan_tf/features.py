"""VGG19 feature extractor for the perceptual loss (frozen; never saved with the generator)."""

import os

import keras
import tensorflow as tf
from absl import logging

# keras.applications.vgg19.preprocess_input ("caffe" mode): BGR means of ImageNet, on 0..255.
_BGR_MEAN = (103.939, 116.779, 123.68)
_LFS_POINTER = b"version https://git-lfs"


def _check_weights_file(path):
    """Raises ValueError when `path` is clearly not an HDF5 weights file (LFS pointer, HTML page)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(_LFS_POINTER):
        raise ValueError(f"--vgg_weights {path} is a git-lfs pointer, not the weights: run "
                         "'git lfs pull' or download vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    if not head.startswith(b"\x89HDF"):
        raise ValueError(f"--vgg_weights {path} is not an HDF5 file ({os.path.getsize(path)} bytes, "
                         f"starts with {head[:16]!r})")


def load_vgg19(weights="imagenet"):
    """Builds keras.applications.VGG19 without its top, on inputs of any size.

    Args:
      weights: "imagenet" (downloaded by Keras into ~/.keras/models on first use), "none" or None
        (random init: the perceptual loss is then meaningless, for tests and offline smoke runs),
        or the path of a local `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`.
    Returns:
      a keras.Model.
    Raises:
      ValueError: when the weights cannot be obtained or read.
    """
    if weights in (None, "none"):
        logging.warning("VGG19 has RANDOM weights (--vgg_weights=none): the perceptual loss is "
                        "meaningless; use it only for tests and offline smoke runs")
        weights = None
    elif weights != "imagenet":
        _check_weights_file(weights)
    try:
        return keras.applications.VGG19(include_top=False, weights=weights,
                                        input_shape=(None, None, 3))
    except Exception as e:  # the download error types vary by Python / urllib version
        if weights == "imagenet":
            raise ValueError("cannot get VGG19 ImageNet weights (offline?): pass --vgg_weights="
                             "/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or "
                             f"--vgg_weights=none ({type(e).__name__}: {e})") from None
        raise ValueError(f"cannot load VGG19 weights from {weights}: {e}") from None


@keras.saving.register_keras_serializable(package="srgan_tf")
class VGGFeatures(keras.Model):
    """Frozen VGG19 features of images in [-1, 1], named after the layer they tap.

    Args:
      layer: VGG19 layer name, "block4_pool" (TensorLayer) or "block5_conv4" (paper's VGG54).
      input_size: resize inputs to input_size x input_size (bilinear) first, or None / 0 to
        compute the features on the images as they are.
      weights: see `load_vgg19`.
      vgg: an already built VGG19 (then `weights` is ignored).
    Call:
      x: float32 [B, H, W, 3] in [-1, 1]. Returns float32 [B, h, w, 512] features (14x14 for
      block4_pool at 224).
    """

    def __init__(self, layer="block4_pool", input_size=224, weights="imagenet", vgg=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_name, self.input_size = layer, input_size
        vgg = vgg if vgg is not None else load_vgg19(weights)
        self.extractor = keras.Model(vgg.input, vgg.get_layer(layer).output, name=f"vgg19_{layer}")
        self.extractor.trainable = False
        self.trainable = False

    def call(self, x, training=False):
        x = tf.cast(x, tf.float32)
        if self.input_size:
            x = tf.image.resize(x, [self.input_size, self.input_size], method="bilinear")
        x = (x + 1.0) * 127.5  # [-1, 1] -> [0, 255]
        x = x[..., ::-1] - tf.constant(_BGR_MEAN, dtype=x.dtype)  # RGB -> BGR, minus mean
        return self.extractor(x, training=False)
