"""SRGAN networks: generator, discriminator and their shared blocks."""

from srgan_tf.models.discriminator import Discriminator
from srgan_tf.models.generator import Generator

__all__ = ["Generator", "Discriminator"]
