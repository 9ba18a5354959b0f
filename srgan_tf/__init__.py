"""srgan_tf: SRGAN x4 super-resolution in TensorFlow 2 / Keras 3.

Importing the package registers the custom Keras classes, so `keras.models.load_model` can read
the `generator.keras` files that training writes.
"""

from srgan_tf.models import Discriminator, Generator

__all__ = ["Generator", "Discriminator"]
__version__ = "0.1.0"
