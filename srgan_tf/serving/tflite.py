"""The TFLite copy of the generator: conversion, the interpreter, and its check against Keras."""

import warnings

import numpy as np
import tensorflow as tf

from srgan_tf import errors
from srgan_tf.config import SCALE
from srgan_tf.imaging import signed_to_unit, uint8_to_signed, unit_to_signed
from srgan_tf.serving.module import FLOAT_INPUT, FLOAT_OUTPUT
from srgan_tf.serving.warmup import sample_image

TFLITE_FILE = "generator.tflite"
TFLITE_TOLERANCE = 1e-3  # TFLite kernels round differently from TF's


def tflite_model(generator, input_size=None):
    """Converts the float signature (without tiling or size guard) to a TFLite flatbuffer.

    The weights enter the traced function as constants (`stateless_call`): the converter leaves
    Keras 3 variables as uninitialised resource tensors otherwise.

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
      input_size: None for dynamic H, W (resize the interpreter's input before use), or an int
        side for a fixed [1, size, size, 3] input.
    Returns:
      bytes of a .tflite model: float32 [1, H, W, 3] in [0, 1] -> [1, 4H, 4W, 3] in [0, 1].
    """
    trainable = [tf.constant(v.numpy()) for v in generator.trainable_variables]
    non_trainable = [tf.constant(v.numpy()) for v in generator.non_trainable_variables]
    side = input_size

    @tf.function(input_signature=[tf.TensorSpec([1, side, side, 3], tf.float32, name=FLOAT_INPUT)])
    def upscale(images):
        sr, _ = generator.stateless_call(trainable, non_trainable, unit_to_signed(images),
                                         training=False)
        return {FLOAT_OUTPUT: tf.clip_by_value(signed_to_unit(tf.cast(sr, tf.float32)), 0.0, 1.0)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [upscale.get_concrete_function()], tf.Module())
    return converter.convert()


def tflite_interpreter(model_content):
    """Returns a TFLite interpreter: ai_edge_litert's when installed, else tf.lite's."""
    try:
        # pylint: disable-next=import-outside-toplevel
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():  # tf.lite.Interpreter warns that it is deprecated
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_content=model_content)
    return Interpreter(model_content=model_content)


def check_tflite(model_content, generator, input_size=None):
    """Runs a TFLite model on a sample image and compares it with `generator`.

    Returns:
      float, the max abs difference (in [0, 1] units).
    Raises:
      ValueError: when the difference exceeds TFLITE_TOLERANCE.
    """
    side = input_size or 20
    image_u8 = sample_image(side, side)
    interpreter = tflite_interpreter(model_content)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [1, side, side, 3], strict=input_size is not None)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, (image_u8[np.newaxis] / 255.0).astype(np.float32))
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = signed_to_unit(generator(uint8_to_signed(image_u8[np.newaxis]), training=False))
    diff = float(np.max(np.abs(got - np.clip(expected.numpy(), 0.0, 1.0))))
    if got.shape != (1, SCALE * side, SCALE * side, 3) or diff > TFLITE_TOLERANCE:
        raise ValueError(f"TFLite model gives shape {got.shape} and differs from the Keras "
                         f"generator by {diff:.2e} on a {side}x{side} sample")
    return diff


def _convert_tflite(generator, input_size):
    """tflite_model(), with a one-line error when the converter refuses dynamic shapes."""
    try:
        return tflite_model(generator, input_size)
    except Exception as e:  # pylint: disable=broad-except  # the converter raises many types
        hint = "" if input_size else " (try a fixed size with --tflite_input_size)"
        raise ValueError(f"TFLite conversion failed{hint}: {errors.first_line(e)}") from e
