"""Image size from the header of encoded PNG/JPEG/BMP/GIF bytes, in TF ops, before any decoding."""

import tensorflow as tf

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
