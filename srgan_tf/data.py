"""tf.data input pipeline: HR images -> batches of (lr, hr) float32 in [-1, 1].

The stream is a pure function of (seed, element index): element k of the stream belongs to epoch
k // per_epoch, the file is the (k % per_epoch)-th of that epoch's seeded permutation, and its crop,
flip and rotation are drawn with stateless RNG seeded by (seed, k). Resuming at step s therefore
only needs s: the pipeline restarts at element s * batch_size and yields exactly what an
uninterrupted run would have yielded, without saving iterator or shuffle-buffer state.

Under tf.distribute each worker reads only its share of every global batch (`dataset` with an
`input_context`, via `distributed_dataset`), and the replicas together see exactly the global
batch a single device would: the data does not depend on the number of devices or workers.
"""

import concurrent.futures
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf import degradations, imaging
from srgan_tf import files as files_lib
from srgan_tf.config import IMAGE_EXTENSIONS, SCALE

# Formats tf.io.decode_image handles natively; anything else (or CMYK JPEG) goes through PIL.
_TF_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
_TF_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I")
MAX_IMAGE_PIXELS = 100_000_000  # larger training images are refused (decompression bombs)


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One usable training image, as found by `scan_images`."""

    path: str
    height: int
    width: int
    needs_pil: bool  # not decodable by tf.io.decode_image (e.g. CMYK JPEG)


def list_images(hr_dir):
    """Lists image files under `hr_dir`, recursively, sorted.

    Args:
      hr_dir: folder; extensions png/jpg/jpeg/bmp/webp in any case are taken.
    Returns:
      list of str paths.
    Raises:
      FileNotFoundError: when `hr_dir` is not a directory.
    """
    if not os.path.isdir(hr_dir):
        raise FileNotFoundError(f"--hr_dir {hr_dir!r} is not a directory")
    paths = []
    for root, dirs, files in os.walk(hr_dir):
        dirs.sort()
        paths += [os.path.join(root, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS)]
    return paths


def _inspect(path, min_size):
    """Decodes one file fully; returns (ImageFile, None) or (None, reason it is unusable)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return None, (f"{width}x{height} is above the {MAX_IMAGE_PIXELS} pixel limit "
                              "(decompression bomb?)")
            if min(height, width) < min_size:
                return None, f"{width}x{height} is smaller than the {min_size}x{min_size} crop"
            needs_pil = image.format not in _TF_FORMATS or image.mode not in _TF_MODES
            image.load()  # the whole file: truncated and corrupt images fail here, not mid-run
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return None, f"cannot decode: {e}"
    return ImageFile(path, height, width, needs_pil), None


def scan_images(paths, min_size, cache_file=None):
    """Decodes every file once, up front, and keeps the usable ones.

    Unusable files (unreadable, truncated, not an image, above MAX_IMAGE_PIXELS, or with a side
    below `min_size`) are skipped with one warning each, naming the file and the reason, so a
    training run never meets a bad file. Decoding runs on a thread pool (PIL releases the GIL):
    about 0.3 s for the 80 photos of SunHays80 on 2 cores. With `cache_file`, results are kept
    per (path, size, mtime) and only new or changed files are decoded again.

    Args:
      paths: list of str.
      min_size: smallest acceptable height and width (the HR crop size).
      cache_file: optional JSON file remembering earlier results.
    Returns:
      (list of ImageFile, list of (path, reason) skipped), both in the order of `paths`.
    """
    cache = {}
    if cache_file and os.path.isfile(cache_file):
        try:
            with open(cache_file, encoding="utf-8") as f:
                cache = json.load(f)
        except (OSError, ValueError):
            cache = {}

    def check(path):
        try:
            stat = os.stat(path)
            key = f"{stat.st_size}:{stat.st_mtime_ns}:{min_size}"
        except OSError as e:
            return path, None, None, f"cannot read: {e}"
        hit = cache.get(path)
        if hit and hit["key"] == key:
            file = ImageFile(path, *hit["file"]) if hit["file"] else None
            return path, key, file, hit["reason"]
        return (path, key, *_inspect(path, min_size))

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        checked = list(pool.map(check, paths))
    usable = [file for _, _, file, _ in checked if file is not None]
    skipped = [(path, reason) for path, _, file, reason in checked if file is None]
    for path, reason in skipped:
        logging.warning("skipping %s: %s", path, reason)
    if skipped:
        logging.warning("skipped %d of %d images", len(skipped), len(paths))
    if cache_file:
        entries = {path: {"key": key, "reason": reason,
                          "file": [file.height, file.width, file.needs_pil] if file else None}
                   for path, key, file, reason in checked if key is not None}
        files_lib.write_json(entries, cache_file)
    return usable, skipped


def materialize_tfds(name, data_dir=None):
    """Writes the HR images of a tensorflow-datasets DIV2K config to PNG files, once.

    DIV2K is read through `tfds.load(name, split="train")` (downloaded and prepared by tfds on first
    use; point `data_dir` at an already prepared copy to work offline). Only the HR images are
    kept: LR images are made by this pipeline. The PNGs go to <data_dir>/srgan_tf_hr/<name>/ so
    training has random access to them.

    Args:
      name: e.g. "div2k/bicubic_x4".
      data_dir: tfds data directory (default: tfds's own, ~/tensorflow_datasets).
    Returns:
      the folder holding the HR PNGs.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    root = data_dir or os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
    out_dir = os.path.join(root, "srgan_tf_hr", name.replace("/", "_"))
    done = os.path.join(out_dir, ".complete")
    if os.path.exists(done):
        return out_dir
    os.makedirs(out_dir, exist_ok=True)
    dataset = tfds.load(name, split="train", data_dir=data_dir,
                        decoders={"hr": tfds.decode.SkipDecoding()})
    count = 0
    for count, example in enumerate(dataset.as_numpy_iterator(), start=1):
        path = os.path.join(out_dir, f"{count:04d}.png")
        with open(path + ".tmp", "wb") as f:
            f.write(example["hr"])
        os.replace(path + ".tmp", path)
    open(done, "w").close()
    logging.info("wrote %d HR images of %s to %s", count, name, out_dir)
    return out_dir


def random_crop_pair(image, crop_size, seed, augment=True, degradation="bicubic"):
    """Draws one HR crop and makes its LR partner by antialiased bicubic x4 downsampling.

    With `degradation="realistic"` the LR partner is made by `degradations.realistic_lr` instead
    (blur, x4 with a random kernel, noise, JPEG), seeded by the element's seed.

    The crop offset is drawn on the LR grid and scaled, so the pair can't drift apart.

    Args:
      image: uint8 [H, W, 3], H and W >= crop_size.
      crop_size: HR crop side, a multiple of 4.
      seed: int64 [2] stateless seed.
      augment: random horizontal flip and 90-degree rotation.
      degradation: "bicubic" (the recipe) or "realistic".
    Returns:
      (lr float32 [crop/4, crop/4, 3], hr float32 [crop, crop, 3]), both in [-1, 1].
    """
    shape = tf.shape(image)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    lr_crop = crop_size // SCALE
    max_y = (shape[0] - crop_size) // SCALE + 1
    max_x = (shape[1] - crop_size) // SCALE + 1
    y = tf.random.stateless_uniform([], seeds[0], 0, max_y, dtype=tf.int32) * SCALE
    x = tf.random.stateless_uniform([], seeds[1], 0, max_x, dtype=tf.int32) * SCALE
    hr = imaging.uint8_to_signed(image[y:y + crop_size, x:x + crop_size])
    if augment:
        flip = tf.random.stateless_uniform([], seeds[2], 0, 2, dtype=tf.int32)
        hr = tf.cond(flip > 0, lambda: tf.image.flip_left_right(hr), lambda: hr)
        hr = tf.image.rot90(hr, tf.random.stateless_uniform([], seeds[3], 0, 4, dtype=tf.int32))
    hr = tf.ensure_shape(hr, [crop_size, crop_size, 3])
    if degradation == "realistic":
        lr_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        lr = imaging.unit_to_signed(degradations.realistic_lr(imaging.signed_to_unit(hr), lr_seed))
    else:
        lr = imaging.bicubic_downsample(hr[None])[0]
    return tf.ensure_shape(lr, [lr_crop, lr_crop, 3]), hr


def _decode_file(path, needs_pil):
    """Decodes one file to uint8 [H, W, 3]: TF's decoders, or PIL for what they can't read."""

    def with_tf():
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8,
                                   expand_animations=False)
        return tf.reshape(image, tf.shape(image))

    def with_pil():
        return tf.numpy_function(imaging.read_rgb, [path], tf.uint8, stateful=False)

    image = tf.cond(needs_pil, with_pil, with_tf)
    return tf.ensure_shape(image, [None, None, 3])


class TrainingData:
    """Deterministic, resumable stream of (lr, hr) batches from a list of usable images.

    Args:
      files: list of ImageFile (from `scan_images`).
      crop_size: HR crop side (multiple of 4).
      batch_size: global batch size.
      seed: integer seed of the stream.
      augment: random flips and 90-degree rotations.
      cache: keep the decoded images in RAM (decode each file once).
      degradation: how LR patches are made: "bicubic" (the recipe) or "realistic".
    """

    def __init__(self, files, crop_size, batch_size, seed=0, augment=True, cache=False,
                 degradation="bicubic"):
        if not files:
            raise ValueError("no usable training images")
        self.files, self.crop_size, self.batch_size = list(files), crop_size, batch_size
        self.seed, self.augment, self.cache = seed, augment, cache
        self.degradation = degradation
        n = len(self.files)
        # Each epoch visits every image once and drops the remainder of the last batch (as the
        # recipe does); a folder smaller than one batch is streamed across epoch boundaries.
        self.per_epoch = (n // batch_size) * batch_size if n >= batch_size else n
        self.steps_per_epoch = max(1, n // batch_size)
        self._cached = None

    def _element_images(self):
        """Returns a function element index -> uint8 image, reading files or the RAM cache."""
        paths = tf.constant([f.path for f in self.files])
        needs_pil = tf.constant([f.needs_pil for f in self.files])
        if not self.cache:
            return lambda i: _decode_file(paths[i], needs_pil[i])
        if self._cached is None:
            logging.info("decoding %d images into RAM (--cache)", len(self.files))
            decoded = [_decode_file(paths[i], needs_pil[i]).numpy() for i in range(len(self.files))]
            shapes = np.array([d.shape for d in decoded], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(shapes.prod(axis=1))])
            self._cached = (tf.constant(np.concatenate([d.reshape(-1) for d in decoded])),
                            tf.constant(offsets), tf.constant(shapes))
        flat, offsets, shapes = self._cached
        return lambda i: tf.reshape(flat[offsets[i]:offsets[i + 1]], shapes[i])

    def dataset(self, start_step=0, input_context=None):
        """Returns the infinite dataset of batches, starting at batch `start_step`.

        Args:
          start_step: index of the first global batch.
          input_context: a tf.distribute.InputContext, or None for the whole global batches.
            With P input pipelines (one per worker) and R replicas in sync, pipeline p reads
            elements p*B/P .. (p+1)*B/P - 1 of every global batch of B, in batches of B/R, which
            tf.distribute hands to its local replicas in order: global replica r gets elements
            r*B/R .. (r+1)*B/R - 1, as if the global batch had been split.
        Returns:
          tf.data.Dataset of (lr float32 [b, c/4, c/4, 3], hr float32 [b, c, c, 3]) in [-1, 1],
          b = B without `input_context`, else B / R.
        Raises:
          ValueError: when B is not a multiple of R, or R of P.
        """
        n, per_epoch, seed = len(self.files), self.per_epoch, self.seed
        batch = self.batch_size
        start = start_step * batch
        pipelines, pipeline, replicas = 1, 0, 1
        if input_context is not None:
            pipelines = input_context.num_input_pipelines
            pipeline = input_context.input_pipeline_id
            replicas = input_context.num_replicas_in_sync
        if batch % replicas or replicas % pipelines:
            raise ValueError(f"--batch_size {batch} must be a multiple of the {replicas} replicas "
                             f"in sync (and these of the {pipelines} workers)")
        share = batch // pipelines  # elements of each global batch this pipeline reads
        image_of = self._element_images()

        def epoch_elements(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            index = epoch * per_epoch + tf.range(per_epoch, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices((index, order[:per_epoch]))

        def make_pair(index, file_index):
            element_seed = tf.stack([tf.constant(seed, tf.int64), index])
            return random_crop_pair(image_of(file_index), self.crop_size, element_seed, self.augment,
                                    self.degradation)

        ds = tf.data.Dataset.counter(start // per_epoch).flat_map(epoch_elements)
        ds = ds.skip(start % per_epoch)
        if pipelines > 1:  # element k sits at k % B in global batch k // B
            ds = ds.filter(lambda index, _: (index % batch) // share == pipeline)
        ds = ds.map(make_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch // replicas, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def distributed_dataset(self, strategy, start_step=0):
        """Returns the stream from batch `start_step` on, distributed over `strategy`'s replicas.

        Each worker builds and reads only its own share (`dataset` with its input context).

        Returns:
          tf.distribute.DistributedDataset of per-replica (lr, hr) batches of B / replicas.
        """
        return strategy.distribute_datasets_from_function(
            lambda input_context: self.dataset(start_step, input_context))

    def fixed_batch(self, count=4):
        """A fixed validation batch for image summaries: centre crops of the first images.

        Returns:
          (lr float32 [count', c/4, c/4, 3], hr float32 [count', c, c, 3]) in [-1, 1].
        """
        lrs, hrs = [], []
        for f in self.files[:count]:
            image = _decode_file(tf.constant(f.path), tf.constant(f.needs_pil))
            y = (f.height - self.crop_size) // 2 // SCALE * SCALE
            x = (f.width - self.crop_size) // 2 // SCALE * SCALE
            hr = imaging.uint8_to_signed(image[y:y + self.crop_size, x:x + self.crop_size])
            hrs.append(hr)
            lrs.append(imaging.bicubic_downsample(hr[None])[0])
        return tf.stack(lrs), tf.stack(hrs)
