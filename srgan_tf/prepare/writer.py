"""Writes a decode-once store (see store.py) from a folder of images or a tfds DIV2K config.

`python -m srgan_tf.prepare` (console script `srgan-prepare`) runs the CLI in
srgan_tf/cli/prepare.py; `write_store` is the library function behind it.
"""

import concurrent.futures
import os
import shutil
import time

import keras
from absl import logging

from srgan_tf import data as data_lib
from srgan_tf import files as files_lib
from srgan_tf import store as store_lib
from srgan_tf.config import SCALE


def write_manifest(folder, source, entries, scanned, skipped, min_size, strip_width):
    """Writes STORE/manifest.json for the raw images `entries` already in `folder`.

    Args:
      folder: the store folder being written.
      source: dict naming what the images came from (e.g. {"hr_dir": path}).
      entries: list of {"file", "source", "height", "width"}, one per image, in store order.
      scanned: number of image files looked at.
      skipped: list of (path, reason) of the unusable ones.
      min_size: smallest side that was accepted.
      strip_width: the images' strip width (store.py).
    Returns:
      the manifest, as a dict.
    """
    smallest = min(min(e["height"], e["width"]) for e in entries)
    manifest = {
        "format": store_lib.FORMAT, "format_version": store_lib.FORMAT_VERSION,
        "source": source, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "min_size": min_size, "strip_width": strip_width,
        "max_crop": smallest - smallest % SCALE,  # the largest --crop_size it serves
        "scanned": scanned, "usable": len(entries),
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "bytes": int(sum(e["height"] * e["width"] * 3 for e in entries)),
        "images": entries,
    }
    files_lib.write_json(manifest, os.path.join(folder, store_lib.MANIFEST), indent=1)
    return manifest


def write_store(output, hr_dir=None, tfds=None, tfds_data_dir=None, min_size=384,
                overwrite=False, workers=None, strip_width=store_lib.STRIP_WIDTH):
    """Decodes every usable image of a folder (or a tfds DIV2K config) once into a store.

    The images are scanned like training scans them (`data.scan_images`, which names each
    unusable file once); images with a side below `min_size` are skipped. The store is written
    into a temporary folder beside `output` and renamed into place when complete, so a killed
    prepare leaves no store that trains.

    Args:
      output: the store folder to create.
      hr_dir: folder of HR images (searched recursively); or
      tfds: a tensorflow-datasets DIV2K config such as "div2k/bicubic_x4" (with `tfds_data_dir`).
      min_size: smallest side kept, in pixels: the largest crop the store must serve.
      overwrite: replace an existing `output`.
      workers: decoding threads (default: the CPU count).
      strip_width: columns per strip of the image files (store.py).
    Returns:
      the manifest written, as a dict.
    Raises:
      FileExistsError: `output` exists and `overwrite` is False.
      ValueError: no usable image, or a bad argument.
    """
    if (hr_dir is None) == (tfds is None):
        raise ValueError("give exactly one of --hr_dir or --tfds")
    if min_size <= 0 or min_size % SCALE:
        raise ValueError(f"--min_size must be a positive multiple of {SCALE}, got {min_size}")
    output = os.path.abspath(output)
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"--output {output!r} exists: pass --overwrite to replace it")
    source = {"hr_dir": os.path.abspath(hr_dir)} if hr_dir is not None else \
        {"tfds": tfds, "tfds_data_dir": tfds_data_dir}
    if tfds is not None:
        hr_dir = data_lib.materialize_tfds(tfds, tfds_data_dir)
    paths = data_lib.list_images(hr_dir)
    usable, skipped = data_lib.scan_images(paths, min_size)
    if not usable:
        raise ValueError(f"no usable training images in {hr_dir} ({len(paths)} image files, "
                         f"{len(skipped)} unreadable or smaller than --min_size {min_size})")
    temp = f"{output}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    os.makedirs(os.path.join(temp, store_lib.IMAGES))
    logging.info("decoding %d images into %s", len(usable), temp)
    progbar = keras.utils.Progbar(len(usable), unit_name="image")

    def write(index):
        file = usable[index]
        image = data_lib.decode_image(file)
        with open(os.path.join(temp, store_lib.image_name(index)), "wb") as f:
            f.write(store_lib.to_strips(image, strip_width))
        return image.shape

    try:
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            shapes = []
            for done, shape in enumerate(pool.map(write, range(len(usable))), start=1):
                shapes.append(shape)
                progbar.update(done)
        entries = [{"file": store_lib.image_name(i), "source": f.path, "height": int(h),
                    "width": int(w)} for i, (f, (h, w, _)) in enumerate(zip(usable, shapes))]
        manifest = write_manifest(temp, source, entries, len(paths), skipped, min_size,
                                  strip_width)
        if os.path.exists(output):  # overwrite: move the old store aside, then swap
            old = f"{output}.old-{os.getpid()}"
            os.rename(output, old)
            os.rename(temp, output)
            shutil.rmtree(old)
        else:
            os.rename(temp, output)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    logging.info("wrote %s: %d images, %.2f GB, crops up to %d (%d files skipped)", output,
                 len(entries), manifest["bytes"] / 1e9, manifest["max_crop"], len(skipped))
    return manifest
