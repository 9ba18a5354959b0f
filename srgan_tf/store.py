"""The decode-once store: every usable training image as raw uint8 pixels, plus a JSON manifest.

Layout of a store folder STORE:

  STORE/manifest.json        what made the store (see `write_store`), read by `open_store`
  STORE/images/000000.rgb    image 0: height * width * 3 bytes, uint8 RGB in strips, no header
  STORE/images/000001.rgb    ...

Each image file holds the image cut into vertical strips of `strip_width` columns (the last one
narrower), one after the other, each strip row-major: a training crop reads, from each strip it
overlaps, only the rows it covers (`read_crop`: one `os.pread` per strip), so a crop costs no
decode and little more I/O than its own pixels, any crop position of the image can be drawn (the
same crops as training from the image files), RAM stays bounded whatever the store's size
(nothing is mapped or kept), and element k of the stream still only needs k. Format version 1
stores (whole rows) read as one strip as wide as the image. docs/data.md has the measurements.

The writer (prepare/writer.py, `python -m srgan_tf.prepare`) and the reader (data.py) share this module.
"""

import json
import os

import numpy as np

FORMAT = "srgan_tf-store"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: whole rows, i.e. one strip as wide as the image
STRIP_WIDTH = 128  # columns per strip of the stores `prepare` writes (docs/data.md)
MANIFEST = "manifest.json"
IMAGES = "images"


def image_name(index):
    """The store-relative file of image `index`."""
    return os.path.join(IMAGES, f"{index:06d}.rgb")


def strips(width, strip_width):
    """The (first column, width) of each strip of an image `width` columns wide."""
    return [(x, min(strip_width, width - x)) for x in range(0, width, strip_width)]


def to_strips(image, strip_width):
    """The bytes of a store image file: uint8 [H, W, 3] cut into strips (module docstring)."""
    return b"".join(image[:, x:x + w].tobytes() for x, w in strips(image.shape[1], strip_width))


def read_crop(path, height, width, strip_width, y, x, size, out=None):
    """Reads one square crop of a raw store image.

    Args:
      path: str or bytes, the image's .rgb file.
      height, width: the image's size in pixels; strip_width: its strips' width.
      y, x: top-left corner of the crop, in pixels.
      size: crop side.
      out: optional numpy uint8 [size, size, 3] to read into.
    Returns:
      numpy uint8 [size, size, 3] (`out` if given).
    """
    path = path.decode() if isinstance(path, bytes) else str(path)
    height, width, strip_width = int(height), int(width), int(strip_width)
    y, x, size = int(y), int(x), int(size)
    if out is None:
        out = np.empty((size, size, 3), np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        for first in range(x // strip_width * strip_width, x + size, strip_width):
            columns = min(strip_width, width - first)
            row = columns * 3
            band = os.pread(fd, size * row, height * first * 3 + y * row)
            if len(band) != size * row:
                raise ValueError(f"store image {path} is truncated: {len(band)} bytes at row "
                                 f"{y} of the strip at column {first}")
            left, right = max(x, first), min(x + size, first + columns)
            out[:, left - x:right - x] = np.frombuffer(band, np.uint8).reshape(
                size, columns, 3)[:, left - first:right - first]
    finally:
        os.close(fd)
    return out


def read_image(path, height, width, strip_width):
    """Reads a whole raw store image. Returns numpy uint8 [height, width, 3]."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size != height * width * 3:
        raise ValueError(f"store image {path} holds {data.size} bytes, expected "
                         f"{height}x{width}x3")
    image = np.empty((height, width, 3), np.uint8)
    for x, w in strips(width, strip_width):
        image[:, x:x + w] = data[height * x * 3:height * (x + w) * 3].reshape(height, w, 3)
    return image


def open_store(store, crop_size):
    """Checks a store and returns its images.

    Args:
      store: the store folder (`--store`).
      crop_size: the HR crop training will draw (`--crop_size`).
    Returns:
      (list of (path, height, width, strip_width) of the images, the manifest as a dict).
    Raises:
      ValueError / FileNotFoundError: one line naming the store and what is wrong (missing or
        corrupt manifest, unknown format version, missing or wrong-sized image file, or a crop
        larger than the smallest image of the store).
    """
    path = os.path.join(store, MANIFEST)
    if not os.path.isdir(store):
        raise FileNotFoundError(f"--store {store!r} is not a directory")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT:
            raise ValueError("not a srgan_tf store manifest")
        version = manifest.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"format version {version!r}, this version of srgan_tf reads "
                             f"versions {', '.join(map(str, READABLE_VERSIONS))}")
        strip = int(manifest["strip_width"]) if version >= 2 else None
        if strip is not None and strip <= 0:
            raise ValueError(f"strip_width {strip}")
        images = [(os.path.join(store, e["file"]), int(e["height"]), int(e["width"]),
                   strip or int(e["width"])) for e in manifest["images"]]
        max_crop = int(manifest["max_crop"])
    except FileNotFoundError:
        raise FileNotFoundError(f"--store {store!r} has no {MANIFEST}: make it with "
                                "python -m srgan_tf.prepare") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--store {store!r}: corrupt {MANIFEST} ({e})") from None
    if not images:
        raise ValueError(f"--store {store!r} holds no images")
    if crop_size > max_crop:
        raise ValueError(f"--store {store!r} serves crops up to {max_crop} (its smallest image), "
                         f"not --crop_size {crop_size}: prepare it again with --min_size "
                         f"{crop_size} or lower --crop_size")
    for file, height, width, _ in images:
        try:
            size = os.path.getsize(file)
        except OSError:
            raise FileNotFoundError(f"--store {store!r}: image file {file} is missing") from None
        if size != height * width * 3:
            raise ValueError(f"--store {store!r}: {file} holds {size} bytes, the manifest says "
                             f"{height}x{width}x3")
    return images, manifest
