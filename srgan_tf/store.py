"""The decode-once store: every usable training image as raw uint8 pixels, plus a JSON manifest.

Layout of a store folder STORE:

  STORE/manifest.json        what made the store (see `write_store`), read by `open_store`
  STORE/images/000000.rgb    image 0: height * width * 3 bytes, uint8 RGB, row-major, no header
  STORE/images/000001.rgb    ...

One raw file per whole image, not records or sub-images: a training crop reads only the rows it
covers (`read_crop`, one `os.pread` of crop_size full rows), so a crop costs no decode and about
crop_size * width * 3 bytes of I/O, any crop position of the image can be drawn (the same crops as
training from the image files), RAM stays bounded whatever the store's size (nothing is mapped or
kept), and element k of the stream still only needs k. docs/data.md has the measurements.

The writer (prepare/writer.py, `python -m srgan_tf.prepare`) and the reader (data.py) share this module.
"""

import json
import os

import numpy as np

FORMAT = "srgan_tf-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
IMAGES = "images"


def image_name(index):
    """The store-relative file of image `index`."""
    return os.path.join(IMAGES, f"{index:06d}.rgb")


def read_crop(path, width, y, x, size):
    """Reads one square crop of a raw store image.

    Args:
      path: str or bytes, the image's .rgb file.
      width: the image's width in pixels.
      y, x: top-left corner of the crop, in pixels.
      size: crop side.
    Returns:
      numpy uint8 [size, size, 3].
    """
    path = path.decode() if isinstance(path, bytes) else str(path)
    width, y, x, size = int(width), int(y), int(x), int(size)
    row = width * 3
    fd = os.open(path, os.O_RDONLY)
    try:
        band = os.pread(fd, size * row, y * row)
    finally:
        os.close(fd)
    if len(band) != size * row:
        raise ValueError(f"store image {path} is truncated: {len(band)} bytes at row {y}")
    return np.frombuffer(band, np.uint8).reshape(size, width, 3)[:, x:x + size]


def read_image(path, height, width):
    """Reads a whole raw store image. Returns numpy uint8 [height, width, 3]."""
    image = np.fromfile(path, dtype=np.uint8)
    if image.size != height * width * 3:
        raise ValueError(f"store image {path} holds {image.size} bytes, expected "
                         f"{height}x{width}x3")
    return image.reshape(height, width, 3)


def open_store(store, crop_size):
    """Checks a store and returns its images.

    Args:
      store: the store folder (`--store`).
      crop_size: the HR crop training will draw (`--crop_size`).
    Returns:
      (list of (path, height, width) of the images, the manifest as a dict).
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
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {manifest.get('format_version')!r}, this "
                             f"version of srgan_tf reads version {FORMAT_VERSION}")
        images = [(os.path.join(store, e["file"]), int(e["height"]), int(e["width"]))
                  for e in manifest["images"]]
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
    for file, height, width in images:
        try:
            size = os.path.getsize(file)
        except OSError:
            raise FileNotFoundError(f"--store {store!r}: image file {file} is missing") from None
        if size != height * width * 3:
            raise ValueError(f"--store {store!r}: {file} holds {size} bytes, the manifest says "
                             f"{height}x{width}x3")
    return images, manifest
