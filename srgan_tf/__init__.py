"""srgan_tf: SRGAN x4 super-resolution in TensorFlow 2 / Keras 3.

`srgan_tf.Generator` and `srgan_tf.Discriminator` are imported on first use, so that command
lines (`python -m srgan_tf.upscale --help`) start without TensorFlow. Importing
`srgan_tf.models` (which every module that loads a model does) registers the custom Keras
classes, so `keras.models.load_model` can read the `generator.keras` files that training writes.
"""

__all__ = ["Generator", "Discriminator"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in __all__:
        from srgan_tf import models  # pylint: disable=import-outside-toplevel
        return getattr(models, name)
    raise AttributeError(f"module 'srgan_tf' has no attribute {name!r}")
