"""TF Serving warm-up requests (assets.extra/tf_serving_warmup_requests) and the sample image.

The records are `tensorflow.serving.PredictionLog` protos: from tensorflow-serving-api when it is
installed (extra `serving`), else serialised by `predict_log_bytes` itself; docs/serving.md says why
the fallback stays.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from srgan_tf.serving.module import BYTES_INPUT, FLOAT_INPUT, SIGNATURE_BYTES, SIGNATURE_FLOAT

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_SIZE = 64  # side of the synthetic LR image of the warm-up requests


def sample_image(height=WARMUP_SIZE, width=WARMUP_SIZE, seed=0):
    """A deterministic synthetic photo-like test image: smooth colour ramps plus fine texture.

    Returns:
      numpy uint8 [height, width, 3].
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    noise = np.random.default_rng(seed).uniform(-20, 20, size=(height, width, 3))
    image = np.stack([128 + 100 * np.sin(x / 7.0), 128 + 100 * np.cos(y / 5.0),
                      255 * (x + y) / max(height + width - 2, 1)], axis=-1) + noise
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _varint(value):
    """Protocol-buffer base-128 varint encoding of a non-negative int."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protocol-buffer field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def predict_log_bytes(model_name, signature_name, inputs):
    """Serialises a tensorflow.serving.PredictionLog holding one PredictRequest.

    Uses tensorflow-serving-api's protos when installed (extra `serving`); otherwise writes the same
    bytes by hand (PredictionLog.predict_log = 6, PredictLog.request = 1, PredictRequest.model_spec
    = 1 and inputs = 2, ModelSpec.name = 1 and signature_name = 3; map entries key = 1, value = 2).

    Args:
      model_name: the model name TF Serving serves the export under.
      signature_name: the signature the request calls.
      inputs: {input name: numpy array or bytes list}.
    Returns:
      bytes, one record of a TF Serving warm-up file.
    """
    protos = {name: tf.make_tensor_proto(value) for name, value in inputs.items()}
    try:
        from tensorflow_serving.apis import (  # pylint: disable=import-outside-toplevel
            model_pb2, predict_pb2, prediction_log_pb2)
    except ImportError:
        spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
        request = _field(1, spec) + b"".join(
            _field(2, _field(1, name.encode()) + _field(2, proto.SerializeToString()))
            for name, proto in sorted(protos.items()))
        return _field(6, _field(1, request))
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
    for name, proto in sorted(protos.items()):
        request.inputs[name].CopyFrom(proto)
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString(deterministic=True)


def write_warmup_requests(saved_model_dir, model_name):
    """Writes assets.extra/tf_serving_warmup_requests: one request per signature.

    TF Serving replays these at load time (--enable_model_warmup, on by default), so the first real
    request does not pay for graph initialisation.

    Returns:
      the path of the written file.
    """
    image_u8 = sample_image()
    records = [
        predict_log_bytes(model_name, SIGNATURE_FLOAT,
                          {FLOAT_INPUT: (image_u8[np.newaxis] / 255.0).astype(np.float32)}),
        predict_log_bytes(model_name, SIGNATURE_BYTES,
                          {BYTES_INPUT: np.array([tf.io.encode_png(image_u8).numpy()], object)}),
    ]
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    logging.info("wrote %d warm-up requests to %s", len(records), path)
    return path
