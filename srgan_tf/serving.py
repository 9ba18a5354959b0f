"""SavedModel export for TF Serving, plus `.keras` and TFLite copies of the generator.

The SavedModel is built from a plain `tf.Module` with explicit input signatures, so a bare
`tensorflow/serving` container (no Python, no Keras, no srgan_tf) can load it. It has two
signatures:

* ``serving_default``: ``images`` float32 [N, H, W, 3] in [0, 1] -> ``sr_images`` float32
  [N, 4H, 4W, 3] in [0, 1] (clipped). Inputs outside [0, 1] or NaN are an ``InvalidArgument``
  error naming the range.
* ``upscale_image``: ``image_bytes`` string [N] of encoded PNG/JPEG/BMP/GIF -> ``sr_image_bytes``
  string [N] of x4 PNG (or JPEG) bytes. TF Serving's REST API base64-encodes tensors whose name ends
  in ``_bytes`` (``{"b64": ...}``) in both directions.

Both process one image at a time, in LR tiles of ``tile_size`` pixels with a margin of at least
the generator's receptive radius (crop-and-stitch, so tiled output equals untiled output), and
reject images of more than ``max_input_pixels`` with an ``InvalidArgument`` error. Encoded images
are measured from their header before they are decoded, so an oversized upload never gets decoded.

A version is written to a temporary directory next to its final place and renamed into
``export_dir/<version>`` only once complete and checked, so TF Serving (which polls
``export_dir`` for numeric subdirectories) never sees a half-written version.
"""

import dataclasses
import math
import os
import re
import shutil
import tempfile
import warnings
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from srgan_tf.config import SCALE
from srgan_tf.imaging import signed_to_uint8, signed_to_unit, uint8_to_signed, unit_to_signed

SIGNATURE_FLOAT = "serving_default"
SIGNATURE_BYTES = "upscale_image"
FLOAT_INPUT, FLOAT_OUTPUT = "images", "sr_images"
BYTES_INPUT, BYTES_OUTPUT = "image_bytes", "sr_image_bytes"
OUTPUT_FORMATS = ("png", "jpeg")
# --format values; the SavedModel is always written.
EXTRA_FORMATS = ("savedmodel", "keras", "tflite")
KERAS_FILE = "generator.keras"
TFLITE_FILE = "generator.tflite"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_SIZE = 64  # side of the synthetic LR image of the warm-up requests
CHECK_TOLERANCE = 1e-4  # max abs difference, in [0, 1], between an export and the Keras generator
TFLITE_TOLERANCE = 1e-3  # TFLite kernels round differently from TF's


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """How the exported graph processes requests.

    Attributes:
      tile_size: side, in LR pixels, of the tiles the generator runs on (margins included).
      tile_overlap: margin of each tile, in LR pixels, cropped away after upscaling; None = the
        generator's receptive radius (the smallest margin that leaves no seam).
      max_input_pixels: largest accepted input, height x width in LR pixels.
      output_format: "png" (lossless) or "jpeg", the encoding of ``sr_image_bytes``.
      jpeg_quality: 1..100, for output_format "jpeg".
    """

    tile_size: int = 256
    tile_overlap: Optional[int] = None
    max_input_pixels: int = 4_000_000
    output_format: str = "png"
    jpeg_quality: int = 95

    def validate(self):
        """Raises ValueError naming the flag of the first bad value; returns self."""
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"--output_format must be one of {', '.join(OUTPUT_FORMATS)}, "
                             f"got {self.output_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"--jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.max_input_pixels <= 0:
            raise ValueError(f"--max_input_pixels must be positive, got {self.max_input_pixels}")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise ValueError(f"--tile_overlap must be >= 0, got {self.tile_overlap}")
        overlap = self.tile_overlap or 0
        if self.tile_size <= 2 * overlap:
            raise ValueError(f"--tile_size must be more than twice --tile_overlap ({overlap}), "
                             f"got {self.tile_size}")
        return self


def receptive_radius(generator):
    """Returns how far, in LR pixels, an output pixel of `generator` sees around its own position.

    Counted from the architecture (srgan_tf.models.Generator): the first conv, two 3x3 convs per
    residual block, the trunk conv, the 3x3 conv of each x2 upsample (the second one at 2x
    resolution) and the last conv (at 4x resolution).

    Args:
      generator: a srgan_tf.models.Generator (anything with `preset` and `num_block`).
    Returns:
      int, the margin a tile needs so that its kept core matches the untiled output.
    """
    try:
        preset, num_block = generator.preset, generator.num_block
    except AttributeError:
        raise ValueError(f"cannot derive the receptive field of {type(generator).__name__}: "
                         "give --tile_overlap") from None
    first, last = (4, 4) if preset == "paper" else (1, 0)  # kernel radius: 9x9 or 3x3 / 1x1
    return math.ceil(first + 2 * num_block + 1 + 1 + 1 / 2 + last / SCALE)


def _tile_layout(length, tile, margin):
    """Splits [0, length) into cores, each inside a tile of `tile` pixels with `margin` around it.

    Cores are `tile - 2 * margin` long (the last one shorter). A tile is placed `margin` before its
    core and clamped into the image, so a tile edge that is not an image edge is always at least
    `margin` away from the core it serves.

    Args:
      length: int32 scalar tensor, image height or width (> 0).
      tile: Python int, tile side.
      margin: Python int, tile margin.
    Returns:
      (core_start, core_end, tile_start, tile_length): int32 [n], [n], [n] and scalar.
    """
    step = tile - 2 * margin
    count = tf.where(length <= tile, 1, (length + step - 1) // step)
    core_start = tf.range(count) * step
    core_end = tf.where(tf.range(count) == count - 1, length, core_start + step)
    tile_length = tf.minimum(tile, length)
    tile_start = tf.clip_by_value(core_start - margin, 0, length - tile_length)
    return core_start, core_end, tile_start, tile_length


def upscale_tiled(generator, image, tile, margin):
    """Runs `generator` on one image, tile by tile (crop-and-stitch), in inference mode.

    Only one tile is on the device at a time (loops with parallel_iterations=1). Pure TF ops, so
    the graph runs on CPU and GPU alike.

    Args:
      generator: keras.Model, float32 [1, h, w, 3] in [-1, 1] -> [1, 4h, 4w, 3] in [-1, 1].
      image: float32 [H, W, 3] in [-1, 1], H, W > 0.
      tile: Python int, tile side in LR pixels (margins included).
      margin: Python int, margin in LR pixels, >= the generator's receptive radius for exact output.
    Returns:
      float32 [4H, 4W, 3] in [-1, 1].
    """

    def run(x):
        return tf.cast(generator(x[tf.newaxis], training=False)[0], tf.float32)

    ys0, ys1, ty, th = _tile_layout(tf.shape(image)[0], tile, margin)
    xs0, xs1, tx, tw = _tile_layout(tf.shape(image)[1], tile, margin)

    def row(i, rows):
        def column(j, cols):
            sr = run(image[ty[i]:ty[i] + th, tx[j]:tx[j] + tw])
            core = sr[SCALE * (ys0[i] - ty[i]):SCALE * (ys1[i] - ty[i]),
                      SCALE * (xs0[j] - tx[j]):SCALE * (xs1[j] - tx[j])]
            return j + 1, cols.write(j, tf.transpose(core, [1, 0, 2]))  # concat joins axis 0

        cols = tf.TensorArray(tf.float32, size=tf.size(xs0), infer_shape=False,
                              element_shape=tf.TensorShape([None, None, 3]))
        _, cols = tf.while_loop(lambda j, _: j < tf.size(xs0), column, (0, cols),
                                parallel_iterations=1)
        return i + 1, rows.write(i, tf.transpose(cols.concat(), [1, 0, 2]))

    rows = tf.TensorArray(tf.float32, size=tf.size(ys0), infer_shape=False,
                          element_shape=tf.TensorShape([None, None, 3]))
    _, rows = tf.while_loop(lambda i, _: i < tf.size(ys0), row, (0, rows), parallel_iterations=1)
    return tf.ensure_shape(rows.concat(), [None, None, 3])


def _little_endian(head, start, size):
    """int64 scalar from `size` little-endian bytes of int64 [32] `head` at `start`."""
    return sum(head[start + k] * (256 ** k) for k in range(size))


def _big_endian(head, start, size):
    """int64 scalar from `size` big-endian bytes of int64 [32] `head` at `start`."""
    return sum(head[start + k] * (256 ** (size - 1 - k)) for k in range(size))


def _starts_with(head, magic):
    """bool scalar: int64 [32] `head` begins with the bytes `magic`."""
    return tf.reduce_all(tf.equal(head[:len(magic)], tf.constant(list(magic), tf.int64)))


def encoded_image_size(data):
    """Reads (height, width) from the header of an encoded image, without decoding it.

    Args:
      data: string scalar, the bytes of a PNG, JPEG, BMP or GIF file.
    Returns:
      (known, size): bool scalar (the format is one of the four) and int64 [2] (height, width),
      [0, 0] when unknown. A JPEG whose header cannot be parsed raises InvalidArgument.
    """
    padded = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), "\0" * 32]), 0, 32)
    head = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)
    is_png = _starts_with(head, b"\x89PNG\r\n\x1a\n")
    is_jpeg = _starts_with(head, b"\xff\xd8")
    is_gif = _starts_with(head, b"GIF8")
    is_bmp = _starts_with(head, b"BM")

    def bmp():  # BITMAPINFOHEADER: int32 width at 18, int32 height at 22 (negative: top-down)
        width, height = _little_endian(head, 18, 4), _little_endian(head, 22, 4)
        height = tf.abs(tf.where(height >= 2 ** 31, height - 2 ** 32, height))
        return tf.stack([height, width])

    size = tf.case([
        (is_png, lambda: tf.stack([_big_endian(head, 20, 4), _big_endian(head, 16, 4)])),
        (is_jpeg, lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64)),
        (is_gif, lambda: tf.stack([_little_endian(head, 8, 2), _little_endian(head, 6, 2)])),
        (is_bmp, bmp),
    ], default=lambda: tf.zeros([2], tf.int64), exclusive=True)
    return tf.reduce_any([is_png, is_jpeg, is_gif, is_bmp]), size


def _text(*parts):
    """string scalar joining Python strings and numeric scalar tensors (written in decimal)."""
    return tf.strings.join([p if isinstance(p, str) else tf.strings.as_string(p) for p in parts])


def _checked(value, conditions):
    """Returns `value` once every (condition, message) pair holds; else raises InvalidArgument."""
    asserts = [tf.debugging.Assert(condition, [message]) for condition, message in conditions]
    with tf.control_dependencies(asserts):
        return tf.identity(value)


def _backend_variable(variable):
    """Returns the tf.Variable behind a keras.Variable (TensorFlow backend)."""
    value = variable.value if isinstance(variable, keras.Variable) else variable
    if not isinstance(value, tf.Variable):
        raise ValueError(f"cannot export variable {variable.path}: its value is a "
                         f"{type(value).__name__}, not a tf.Variable "
                         "(is the Keras backend TensorFlow?)")
    return value


class SuperResolutionModule(tf.Module):
    """The exported object: the generator's variables and the two serving functions.

    Only the variables are tracked, not the Keras model, so loading needs no Keras code.

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
      config: a validated ServingConfig.
    """

    def __init__(self, generator, config):
        super().__init__(name="srgan")
        config.validate()
        margin = config.tile_overlap
        if margin is None:
            margin = receptive_radius(generator)
        if config.tile_size <= 2 * margin:
            raise ValueError(f"--tile_size must be more than twice the tile overlap ({margin}), "
                             f"got {config.tile_size}")
        self.config, self.margin = config, margin
        # The backend tf.Variables, not the keras.Variable wrappers: saving the wrappers writes each
        # variable twice, and a TF1-style loader (TF Serving, saved_model_cli run) restores the copy
        # that the graph does not read ("Could not find variable generator/kernel").
        self.generator_variables = [_backend_variable(v) for v in generator.variables]
        # A closure, not an attribute: tf.Module would otherwise track (and save) the Keras model.
        self._upscale = lambda image: upscale_tiled(generator, image, config.tile_size, margin)

    def _pixel_check(self, height, width, name):
        """(condition, message) rejecting over max_input_pixels; height, width int64 scalars."""
        limit = self.config.max_input_pixels
        return height * width <= limit, _text(
            name, " is ", width, " x ", height, " = ", height * width,
            " pixels, above the limit of ",
            f"{limit} input pixels (--max_input_pixels of the export)")

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32, name=FLOAT_INPUT)])
    def serving_default(self, images):
        """x4 super-resolution of a batch of float images.

        Args:
          images: float32 [N, H, W, 3] RGB in [0, 1]; H, W > 0. Values outside [0, 1] or NaN
            are an InvalidArgument error.
        Returns:
          {"sr_images": float32 [N, 4H, 4W, 3] in [0, 1], clipped}.
        """
        shape = tf.shape(images, out_type=tf.int64)
        # Counted from a mask so that graph optimisation cannot replace it by the declared rank 4:
        # servers do not check a request's shape against the signature.
        rank = tf.size(tf.boolean_mask(shape, shape >= 0))
        images = _checked(images, [
            (tf.logical_and(tf.equal(rank, 4), tf.equal(shape[-1], 3)),
             _text("images must be float32 [N, H, W, 3] in [0, 1], got shape [",
                   tf.strings.reduce_join(tf.strings.as_string(shape), separator=", "), "]")),
        ])
        images = _checked(images, [
            (tf.reduce_all(shape[1:3] > 0), "images must have height and width >= 1"),
            self._pixel_check(shape[1], shape[2], "each image of images"),
        ])
        # NaN fails both comparisons. Values of 0..255 would come out as a white image.
        images = _checked(images, [
            (tf.reduce_all(tf.logical_and(images >= 0.0, images <= 1.0)),
             _text("images must be float32 in [0, 1] (RGB divided by 255), got values in [",
                   tf.reduce_min(images), ", ", tf.reduce_max(images), "] or NaN")),
        ])

        def upscale_batch():
            return tf.map_fn(lambda image: self._upscale(unit_to_signed(image)), images,
                             parallel_iterations=1,
                             fn_output_signature=tf.TensorSpec([None, None, 3], tf.float32))

        def empty_batch():
            return tf.zeros(tf.concat([[0], SCALE * tf.shape(images)[1:3], [3]], 0), tf.float32)

        sr = tf.cond(tf.shape(images)[0] > 0, upscale_batch, empty_batch)
        return {FLOAT_OUTPUT: tf.clip_by_value(signed_to_unit(sr), 0.0, 1.0)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    def upscale_image(self, image_bytes):
        """x4 super-resolution of encoded images, returned encoded.

        Args:
          image_bytes: string [N], each a PNG, JPEG, BMP or GIF file (first frame of an animation);
            grayscale, gray+alpha, palette and RGBA images are converted to RGB (alpha dropped).
        Returns:
          {"sr_image_bytes": string [N]}, each an RGB PNG (or JPEG) 4x the input's width and height.
        """
        indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
        encoded = tf.map_fn(self._upscale_encoded, (image_bytes, indices), parallel_iterations=1,
                            fn_output_signature=tf.TensorSpec([], tf.string))
        return {BYTES_OUTPUT: encoded}

    def _upscale_encoded(self, item):
        """string scalar of one encoded image (and its int64 index) -> string scalar, encoded x4."""
        data, index = item
        name = _text("image_bytes[", index, "]")
        data = _checked(data, [(tf.strings.length(data) > 0, _text(name, " is empty"))])
        known, size = encoded_image_size(data)
        data = _checked(data, [(known, _text(name, " is not a PNG, JPEG, BMP or GIF image"))])
        data = _checked(data, [self._pixel_check(size[0], size[1], name)])  # before decoding
        image_u8 = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        image_u8 = tf.ensure_shape(image_u8, [None, None, 3])
        shape = tf.shape(image_u8, out_type=tf.int64)
        image_u8 = _checked(image_u8, [
            (tf.reduce_all(shape[:2] > 0), _text(name, " has no pixels")),
            self._pixel_check(shape[0], shape[1], name),
        ])
        sr_u8 = signed_to_uint8(self._upscale(uint8_to_signed(image_u8)))
        if self.config.output_format == "jpeg":
            return tf.io.encode_jpeg(sr_u8, format="rgb", quality=self.config.jpeg_quality)
        return tf.io.encode_png(sr_u8)

    def signatures(self):
        """Returns the {name: concrete function} dict for tf.saved_model.save."""
        return {SIGNATURE_FLOAT: self.serving_default.get_concrete_function(),
                SIGNATURE_BYTES: self.upscale_image.get_concrete_function()}


def next_version(export_dir):
    """Returns 1 + the highest integer-named subdirectory of `export_dir` (1 if none)."""
    versions = [int(name) for name in _listdir(export_dir)
                if re.fullmatch(r"[0-9]+", name) and os.path.isdir(os.path.join(export_dir, name))]
    return max(versions, default=0) + 1


def _listdir(path):
    return os.listdir(path) if os.path.isdir(path) else []


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


def run_like_tf_serving(path, requests):
    """Runs signatures of a SavedModel as TF Serving does: TF1 session, restore op, tensor names.

    Args:
      path: a SavedModel directory.
      requests: {signature name: {input name: numpy array}}.
    Returns:
      {signature name: {output name: numpy array}}.
    """
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, [tf.saved_model.SERVING], path)
        results = {}
        for name, inputs in requests.items():
            signature = meta_graph.signature_def[name]
            feeds = {signature.inputs[key].name: value for key, value in inputs.items()}
            fetches = {key: info.name for key, info in signature.outputs.items()}
            results[name] = session.run(fetches, feeds)
        return results


def check_saved_model(path, generator, config):
    """Runs both signatures of the SavedModel at `path` as TF Serving would and compares with Keras.

    Raises:
      ValueError: when an output differs from the Keras generator's beyond CHECK_TOLERANCE (float)
        or one uint8 level (bytes), or has the wrong shape.
    """
    image_u8 = sample_image(24, 20)
    expected = signed_to_unit(generator(uint8_to_signed(image_u8[np.newaxis]), training=False))
    expected = np.clip(expected.numpy(), 0.0, 1.0)
    results = run_like_tf_serving(path, {
        SIGNATURE_FLOAT: {FLOAT_INPUT: image_u8[np.newaxis].astype(np.float32) / 255.0},
        SIGNATURE_BYTES: {BYTES_INPUT: np.array([tf.io.encode_png(image_u8).numpy()], object)},
    })
    diff = float(np.max(np.abs(results[SIGNATURE_FLOAT][FLOAT_OUTPUT] - expected)))
    if diff > CHECK_TOLERANCE:
        raise ValueError(f"{path}: {SIGNATURE_FLOAT} differs from the Keras generator by "
                         f"{diff:.2e}")
    encoded = results[SIGNATURE_BYTES][BYTES_OUTPUT][0]
    decoded = tf.io.decode_image(encoded, channels=3).numpy().astype(np.int32)
    if decoded.shape != expected.shape[1:]:
        raise ValueError(f"{path}: {SIGNATURE_BYTES} returned shape {decoded.shape}, "
                         f"expected {expected.shape[1:]}")
    if config.output_format == "png":
        levels = int(np.max(np.abs(decoded - np.round(expected[0] * 255.0))))
        if levels > 1:
            raise ValueError(f"{path}: {SIGNATURE_BYTES} differs from the Keras generator by "
                             f"{levels}/255")
    logging.info("checked %s as TF Serving loads it: both signatures match the Keras generator "
                 "(float diff %.1e)", path, diff)


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


def export(generator, export_dir, version=None, config=ServingConfig(), formats=("savedmodel",),
           warmup=False, model_name="srgan", tflite_input_size=None, check=True):
    """Exports `generator` as TF Serving version `export_dir`/<version>, never overwriting one.

    The version directory holds the SavedModel and, on request, `generator.keras`,
    `generator.tflite` and `assets.extra/tf_serving_warmup_requests`. It is assembled in a hidden
    temporary directory of `export_dir` and renamed into place once complete (and checked).

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
      export_dir: the model base path TF Serving serves (created if missing).
      version: positive int, or None for 1 + the highest existing version.
      config: ServingConfig of the exported graph.
      formats: subset of EXTRA_FORMATS; the SavedModel is always written.
      warmup: write TF Serving warm-up requests.
      model_name: model name used in the warm-up requests.
      tflite_input_size: None for a TFLite model with dynamic H, W; an int for a fixed square input.
      check: load the SavedModel (and TFLite model) back and compare with `generator` first.
    Returns:
      str, the path of the new version directory.
    Raises:
      ValueError: bad arguments, an existing version, or a failed check.
    """
    config.validate()
    unknown = sorted(set(formats) - set(EXTRA_FORMATS))
    if unknown:
        raise ValueError(f"--format must be a list of {', '.join(EXTRA_FORMATS)}, got {unknown}")
    if tflite_input_size is not None and tflite_input_size <= 0:
        raise ValueError(f"--tflite_input_size must be positive, got {tflite_input_size}")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ValueError(f"--export_dir {export_dir} exists and is not a directory")
    os.makedirs(export_dir, exist_ok=True)
    if version is None:
        version = next_version(export_dir)
    if version <= 0:
        raise ValueError(f"--version must be a positive integer, got {version}")
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise ValueError(f"{final} already exists: versions are never overwritten "
                         f"(omit --version to write version {next_version(export_dir)})")
    module = SuperResolutionModule(generator, config)
    logging.info("exporting version %d to %s: %s, tile margin %d", version, final, config,
                 module.margin)
    temp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, temp, signatures=module.signatures())
        if warmup:
            write_warmup_requests(temp, model_name)
        if check:
            check_saved_model(temp, generator, config)
        if "keras" in formats:
            keras_path = os.path.join(temp, KERAS_FILE)
            generator.save(keras_path)
            if check:
                _check_keras(keras_path, generator)
        if "tflite" in formats:
            content = _convert_tflite(generator, tflite_input_size)
            if check:
                diff = check_tflite(content, generator, tflite_input_size)
                logging.info("TFLite model runs in the interpreter, max diff %.1e", diff)
            with open(os.path.join(temp, TFLITE_FILE), "wb") as f:
                f.write(content)
        os.chmod(temp, 0o755)  # mkdtemp makes it private; the server may run as another user
        try:
            os.rename(temp, final)
        except OSError:
            if os.path.exists(final):
                raise ValueError(f"{final} was written by another export meanwhile; "
                                 "run again to write the next version") from None
            raise
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    logging.info("exported %s", final)
    return final


def _convert_tflite(generator, input_size):
    """tflite_model(), with a one-line error when the converter refuses dynamic shapes."""
    try:
        return tflite_model(generator, input_size)
    except Exception as e:  # pylint: disable=broad-except  # the converter raises many types
        hint = "" if input_size else " (try a fixed size with --tflite_input_size)"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"TFLite conversion failed{hint}: {first}") from e


def _check_keras(path, generator):
    """Reloads the .keras file at `path` and compares it with `generator` on a sample image."""
    reloaded = keras.models.load_model(path, compile=False)
    x = uint8_to_signed(sample_image(20, 20)[np.newaxis])
    diff = float(np.max(np.abs(reloaded(x, training=False) - generator(x, training=False))))
    if diff > 1e-6:
        raise ValueError(f"{path}: reloaded generator differs by {diff:.2e}")
