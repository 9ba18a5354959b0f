"""errors.first_line: the line of a TensorFlow error that names the cause."""

import keras
import pytest
import tensorflow as tf

from srgan_tf import errors


class _Failing(keras.layers.Layer):
    def call(self, x):
        return tf.reshape(x, [7])


def _raised(fn):
    with pytest.raises(Exception) as raised:
        fn()
    return raised.value


def test_keras_eager_call_wrapper_is_skipped():
    error = _raised(lambda: _Failing()(tf.zeros([4, 4])))
    assert error.message.startswith("Exception encountered when calling")  # what Keras gives
    assert errors.first_line(error) == (
        "Input to reshape is a tensor with 16 values, but the requested shape has 7 [Op:Reshape]")


def test_function_node_prefix_is_dropped():
    reshape = tf.function(lambda x: tf.reshape(x, [7]),
                          input_signature=[tf.TensorSpec([None, None], tf.float32)])
    error = _raised(lambda: reshape(tf.zeros([4, 4])))  # fails when run, not when traced
    assert error.message.startswith("{{function_node ")
    assert errors.first_line(error) == (
        "Input to reshape is a tensor with 16 values, but the requested shape has 7")


def test_plain_errors():
    assert errors.first_line(OSError(28, "No space left on device")) == (
        "[Errno 28] No space left on device")
    assert errors.first_line(ValueError("first\nsecond")) == "first"
    assert errors.first_line(ValueError("")) == "ValueError"
    assert errors.first_line(ValueError("\n  \n")) == "ValueError"
