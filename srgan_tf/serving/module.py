"""The exported tf.Module: the generator's variables, tiled inference in TF ops, both signatures.

Signature, input and output names are part of the serving contract (docs/serving.md).
"""

import dataclasses
import math
from typing import Optional

import keras
import tensorflow as tf

from srgan_tf.config import SCALE
from srgan_tf.imaging import signed_to_uint8, signed_to_unit, uint8_to_signed, unit_to_signed
from srgan_tf.serving.headers import encoded_image_size

SIGNATURE_FLOAT = "serving_default"
SIGNATURE_BYTES = "upscale_image"
FLOAT_INPUT, FLOAT_OUTPUT = "images", "sr_images"
BYTES_INPUT, BYTES_OUTPUT = "image_bytes", "sr_image_bytes"
OUTPUT_FORMATS = ("png", "jpeg")


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
