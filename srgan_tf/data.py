"""tf.data input pipeline: HR images -> batches of (lr, hr) float32 in [-1, 1].

The images come from files (decoded per read), from a decode-once store (store.py: raw pixels in
strips, a crop reads only its rows of the strips it overlaps) or from RAM (`cache`). Per element
the CPU only reads, crops and flips uint8 pixels; the antialiased bicubic x4 downsample runs once
per batch.

The stream is a pure function of (seed, element index). Reads come in groups: one image read
gives `crops_per_image` (N) crops. Elements are laid out in windows of N global batches of B:
element k = w*N*B + j*B + s is crop j of group g = w*B + s, so each batch holds B different
images and each read image serves N consecutive batches. Group g belongs to epoch g // per_epoch
and reads the (g % per_epoch)-th image of that epoch's seeded permutation; the crop, flip and
rotation of element k are a hash of (seed, k) (`crop_draws`; from a store or RAM computed for a
whole window in one call). Resuming at step s only needs s: the pipeline restarts at the window
of element s * B and skips to it, yielding exactly what an uninterrupted run would have yielded,
without saving iterator or shuffle-buffer state.
With N = 1 element k is group k.

Under tf.distribute each worker reads only its share of every global batch (`dataset` with an
`input_context`, via `distributed_dataset`), and the replicas together see exactly the global
batch a single device would: the data does not depend on the number of devices or workers.
"""

import concurrent.futures
import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf import degradations, imaging
from srgan_tf import files as files_lib
from srgan_tf import store as store_lib
from srgan_tf.config import AUGMENTS, IMAGE_EXTENSIONS, SCALE, parse_train_degradation

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
    raw: bool = False  # a raw uint8 image of a store (store.py), not an image file
    strip_width: int = 0  # a store image's strip width (store.py)


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


def store_files(store, crop_size):
    """The images of a decode-once store, checked (see `store.open_store`).

    Returns:
      (list of ImageFile with raw=True, the store's manifest as a dict).
    """
    images, manifest = store_lib.open_store(store, crop_size)
    return [ImageFile(path, height, width, False, raw=True, strip_width=strip)
            for path, height, width, strip in images], \
        manifest


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


def decode_image(file):
    """Decodes one usable image (file or store image) as training does.

    Args:
      file: an ImageFile.
    Returns:
      numpy uint8 [H, W, 3].
    """
    if file.raw:
        return store_lib.read_image(file.path, file.height, file.width, file.strip_width)
    return _decode_file(tf.constant(file.path), tf.constant(file.needs_pil)).numpy()


def decode_all(files, workers=None):
    """Decodes every image into RAM, in parallel, with a progress bar (`--cache`).

    Each image stays its own numpy array: no tensor or graph constant holds the whole set, so
    its size is bounded by RAM only (not by the 2 GB limit of a serialized graph).

    Returns:
      list of numpy uint8 [H, W, 3], in the order of `files`.
    """
    logging.info("decoding %d images into RAM (--cache)", len(files))
    progbar = keras.utils.Progbar(len(files), unit_name="image")
    images = [None] * len(files)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        futures = {pool.submit(decode_image, f): i for i, f in enumerate(files)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            images[futures[future]] = future.result()
            progbar.update(done)
    logging.info("cached %.2f GB of decoded pixels", sum(i.nbytes for i in images) / 1e9)
    return images


# Per-element draws: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
# generators", OOPSLA 2014) read at position DRAWS * k + d of the sequence seeded by the stream's
# seed. A pure function of (seed, element index k) made of elementwise uint64 ops, so the draws of
# a whole batch take one vectorised call (TensorFlow's stateless RNG ops take one seed per call).
_DRAWS = 4  # per element: crop row, crop column, flip, rotation
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment
_MIX = ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB))  # its finaliser's shifts, multipliers


def _mix64(z):
    """SplitMix64's finaliser: a bijective hash of uint64 [N]."""
    for shift, multiplier in _MIX:
        z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(shift, tf.uint64)))
        z = z * tf.constant(multiplier, tf.uint64)
    return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(31, tf.uint64)))


def _uniform_ints(seed, indices, draw, bounds):
    """Draw number `draw` of the elements `indices` (int64 [N]): int32 [N] in [0, bounds)."""
    position = tf.cast(indices, tf.uint64) * _DRAWS + draw + 1
    z = _mix64(_mix64(tf.cast(seed, tf.uint64)) + position * tf.constant(_GOLDEN_GAMMA, tf.uint64))
    high = tf.bitwise.right_shift(z, tf.constant(32, tf.uint64))  # 32 random bits
    # Multiply-shift maps them onto [0, bounds) (bias below bounds / 2**32).
    scaled = tf.bitwise.right_shift(high * tf.cast(bounds, tf.uint64), tf.constant(32, tf.uint64))
    return tf.cast(scaled, tf.int32)


def crop_draws(seed, indices, heights, widths, crop_size, augment):
    """The crops of the elements `indices`, a pure function of (seed, element index).

    Args:
      seed: the stream's integer seed.
      indices: int64 [N] element indices.
      heights, widths: int32 [N], the sizes of the images the crops come from (>= crop_size).
      crop_size: HR crop side, a multiple of 4.
      augment: one of AUGMENTS.
    Returns:
      int32 [N, 4] rows (y, x, flip, rotation): the top-left corner, on the LR grid so that an
      LR/HR pair can't drift apart; a horizontal flip (0 or 1, "flip" and "flip_rot90"); then
      quarter turns counter-clockwise (0-3, "flip_rot90"). Draws an augmentation doesn't use are 0.
    """
    seed = tf.cast(tf.cast(seed, tf.int64), tf.uint64)
    indices = tf.convert_to_tensor(indices, tf.int64)
    heights, widths = (tf.convert_to_tensor(v, tf.int32) for v in (heights, widths))
    y = _uniform_ints(seed, indices, 0, (heights - crop_size) // SCALE + 1) * SCALE
    x = _uniform_ints(seed, indices, 1, (widths - crop_size) // SCALE + 1) * SCALE
    zero = tf.zeros_like(y)
    flip = _uniform_ints(seed, indices, 2, 2) if augment != "none" else zero
    rotation = _uniform_ints(seed, indices, 3, 4) if augment == "flip_rot90" else zero
    return tf.stack([y, x, flip, rotation], axis=1)


def apply_crop(image, draw, crop_size, augment):
    """Cuts one crop of `crop_draws` (row `draw`, int32 [4]) out of `image` (uint8 [H, W, 3]):
    the crop, then the horizontal flip, then the quarter turns (as `_read_batch` does)."""
    y, x, flip, rotation = tf.unstack(draw)
    hr = image[y:y + crop_size, x:x + crop_size]
    if augment != "none":
        hr = tf.cond(flip > 0, lambda: tf.image.flip_left_right(hr), lambda: hr)
    if augment == "flip_rot90":
        hr = tf.image.rot90(hr, rotation)
    return tf.ensure_shape(hr, [crop_size, crop_size, 3])


def pairs_of_batch(hr_u8):
    """Turns a batch of uint8 HR crops into the (lr, hr) pair: one bicubic resize per batch.

    Args:
      hr_u8: uint8 [B, c, c, 3].
    Returns:
      (lr float32 [B, c/4, c/4, 3], hr float32 [B, c, c, 3]), both in [-1, 1] (LR with the
      slight over/undershoot of bicubic).
    """
    hr = imaging.uint8_to_signed(hr_u8)
    return imaging.bicubic_downsample(hr), hr


def degraded_pairs_of_batch(hr_u8, indices, spec, seed):
    """`pairs_of_batch`, then one fixed degradation of each LR, as evaluate makes its LR.

    The batch's bicubic LR is rounded to 8 bits and degraded by `degradations.degrade_fixed`
    (the noise seeded by the stream's seed and the element's index).

    Args:
      hr_u8: uint8 [B, c, c, 3].
      indices: int64 [B], the elements' indices in the stream.
      spec: (kind, value) from `config.parse_degradation`.
      seed: integer seed of the stream.
    Returns:
      (lr float32 [B, c/4, c/4, 3], hr float32 [B, c, c, 3]), both in [-1, 1].
    """
    lr, hr = pairs_of_batch(hr_u8)
    seeds = tf.stack([tf.fill(tf.shape(indices), tf.constant(seed, tf.int64)), indices], axis=1)

    def degrade(args):
        lr_u8, element_seed = args
        return degradations.degrade_fixed(
            lr_u8, spec, tf.random.experimental.stateless_fold_in(element_seed, 1))

    lr_u8 = tf.map_fn(degrade, (imaging.signed_to_uint8(lr), seeds), fn_output_signature=tf.uint8)
    return imaging.uint8_to_signed(tf.ensure_shape(lr_u8, lr.shape)), hr


def realistic_pair(hr_u8, seed):
    """Turns one uint8 HR crop into an (lr, hr) pair whose LR is `degradations.realistic_lr`.

    Args:
      hr_u8: uint8 [c, c, 3].
      seed: int64 [2], the element's seed (the stream's seed and the element index); the
        degradation draws from a seed folded from it, apart from the crop's draws.
    Returns:
      (lr float32 [c/4, c/4, 3], hr float32 [c, c, 3]), both in [-1, 1].
    """
    lr = degradations.realistic_lr(tf.cast(hr_u8, tf.float32) / 255.0,
                                   tf.random.experimental.stateless_fold_in(seed, 1))
    return imaging.unit_to_signed(lr), imaging.uint8_to_signed(hr_u8)


class TrainingData:
    """Deterministic, resumable stream of (lr, hr) batches from a list of usable images.

    Args:
      files: list of ImageFile (from `scan_images`, or `store_files` for a store).
      crop_size: HR crop side (multiple of 4).
      batch_size: global batch size.
      seed: integer seed of the stream.
      augment: "none", "flip" (random horizontal flips) or "flip_rot90" (and rotations by
        multiples of 90 degrees).
      cache: keep the decoded images in RAM (decode each image once, in parallel).
      crops_per_image: crops drawn from each image read (see the module docstring). An epoch
        reads every image once, so it has crops_per_image times the steps.
      degradation: how LR patches are made: "bicubic" (the recipe: one antialiased bicubic x4
        per batch), "realistic" (`degradations.realistic_lr` per element, seeded by the
        element's index, so the stream stays a pure function of (seed, index)), or one fixed
        "jpeg:Q", "blur:S" or "noise:S" after the bicubic (`degraded_pairs_of_batch`).
    """

    def __init__(self, files, crop_size, batch_size, seed=0, augment="flip_rot90", cache=False,
                 crops_per_image=1, degradation="bicubic"):
        if not files:
            raise ValueError("no usable training images")
        if augment not in AUGMENTS:
            raise ValueError(f"--augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
        if crops_per_image < 1:
            raise ValueError(f"--crops_per_image must be >= 1, got {crops_per_image}")
        parsed_degradation = parse_train_degradation(degradation, crop_size)
        self.files, self.crop_size, self.batch_size = list(files), crop_size, batch_size
        self.seed, self.augment, self.cache = seed, augment, cache
        self.crops_per_image = crops_per_image
        self.degradation = degradation
        # (kind, value) of a fixed degradation, else None.
        self._fixed = parsed_degradation if isinstance(parsed_degradation, tuple) else None
        n = len(self.files)
        # Each epoch reads every image once and drops the remainder of the last batch (as the
        # recipe does); a folder smaller than one batch is streamed across epoch boundaries.
        self.per_epoch = (n // batch_size) * batch_size if n >= batch_size else n
        self.steps_per_epoch = max(1, crops_per_image * self.per_epoch // batch_size)
        self._images = None  # decoded images (cache)

    @property
    def _from_pixels(self):
        """Whether crops are read from decoded pixels (a store or the RAM cache), not files."""
        return self.cache or self.files[0].raw

    def _group_crops(self):
        """Image files: a function (file index, element indices int64 [N]) -> uint8 [N, c, c, 3],
        one decode per group."""
        crop, seed, augment = self.crop_size, self.seed, self.augment
        count = self.crops_per_image
        paths = tf.constant([f.path for f in self.files])
        needs_pil = tf.constant([f.needs_pil for f in self.files])

        def from_file(file_index, indices):
            image = _decode_file(paths[file_index], needs_pil[file_index])
            shape = tf.shape(image)
            draws = crop_draws(seed, indices, tf.fill([count], shape[0]),
                               tf.fill([count], shape[1]), crop, augment)
            return tf.stack([apply_crop(image, draws[j], crop, augment) for j in range(count)])
        return from_file

    def _draws_of(self, file_indices, indices):
        """Store or RAM: the draws of elements `indices` (int64 [...]) read from the files
        `file_indices` (same shape): int32 [..., 5] rows (file index, y, x, flip, rotation), the
        same crops as the files path cuts (`apply_crop`). `_read_batch` then reads the pixels."""
        heights = tf.constant([f.height for f in self.files], tf.int32)
        widths = tf.constant([f.width for f in self.files], tf.int32)
        files = tf.reshape(tf.cast(file_indices, tf.int32), [-1])
        draws = crop_draws(self.seed, tf.reshape(indices, [-1]), tf.gather(heights, files),
                           tf.gather(widths, files), self.crop_size, self.augment)
        rows = tf.concat([files[:, None], draws], axis=1)
        return tf.reshape(rows, tf.concat([tf.shape(indices), [5]], axis=0))

    def _read_batch(self):
        """Store or RAM: a function int32 [b, 5] draws -> uint8 [b, c, c, 3] crops.

        One call per batch reads every crop straight into the batch (the rows it covers of each
        strip of a raw store file, or a slice of a cached image), flipped and rotated as
        `apply_crop` does: per patch only the read and one copy, no per-element tf.data work
        (docs/data.md).
        """
        crop = self.crop_size
        if self.cache:
            if self._images is None:
                self._images = decode_all(self.files)
            images = self._images

            def read(file_index, y, x, out=None):
                patch = images[file_index][y:y + crop, x:x + crop]
                if out is None:
                    return patch
                out[...] = patch
                return out
        else:
            sizes = [(f.path, f.height, f.width, f.strip_width) for f in self.files]

            def read(file_index, y, x, out=None):
                return store_lib.read_crop(*sizes[file_index], y, x, crop, out)

        def read_batch(draws):
            out = np.empty((len(draws), crop, crop, 3), np.uint8)
            for i, (file_index, y, x, flip, rotation) in enumerate(draws.tolist()):
                if not (flip or rotation):  # straight into the batch
                    read(file_index, y, x, out[i])
                    continue
                patch = read(file_index, y, x)
                if flip:  # tf.image.flip_left_right
                    patch = patch[:, ::-1]
                out[i] = np.rot90(patch, rotation)  # tf.image.rot90: counter-clockwise
            return out

        def read_tensor(draws):
            hr = tf.numpy_function(read_batch, [draws], tf.uint8, stateful=False)
            return tf.ensure_shape(hr, [None, crop, crop, 3])
        return read_tensor

    def dataset(self, start_step=0, input_context=None):
        """Returns the infinite dataset of batches, starting at batch `start_step`.

        Args:
          start_step: index of the first global batch.
          input_context: a tf.distribute.InputContext, or None for the whole global batches.
            With P input pipelines (one per worker) and R replicas in sync, pipeline p reads
            (and decodes) only elements p*B/P .. (p+1)*B/P - 1 of every global batch of B, in
            batches of B/R, which tf.distribute hands to its local replicas in order: global
            replica r gets elements r*B/R .. (r+1)*B/R - 1, as if the global batch had been split.
        Returns:
          tf.data.Dataset of (lr float32 [b, c/4, c/4, 3], hr float32 [b, c, c, 3]) in [-1, 1],
          b = B without `input_context`, else B / R.
        Raises:
          ValueError: when B is not a multiple of R, or R of P.
        """
        n, per_epoch, seed = len(self.files), self.per_epoch, self.seed
        batch, count = self.batch_size, self.crops_per_image
        window = count * batch  # elements of one window: N global batches
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
        # From pixels (store or RAM) the stream carries the draws of whole windows and the pixels
        # are read once per batch; from image files, the crops themselves.
        pixels = self._from_pixels
        first_group = start // window * batch

        def epoch_groups(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            group = epoch * per_epoch + tf.range(per_epoch, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices((group, order[:per_epoch]))

        def indices_of(group):
            # Group g = w*B + s serves elements w*N*B + j*B + s, j = 0 .. N-1: int64 [..., N].
            group = group[..., None]
            return group // batch * window + tf.range(count, dtype=tf.int64) * batch \
                + group % batch

        ds = tf.data.Dataset.counter(first_group // per_epoch).flat_map(epoch_groups)
        ds = ds.skip(first_group % per_epoch)
        if pipelines > 1:  # group g feeds slot g % B of its global batches
            ds = ds.filter(lambda group, _: (group % batch) // share == pipeline)
        local = batch // replicas
        if pixels:
            # The groups of one window (this pipeline's share) -> their N rows of draws, all in
            # one vectorised call; each row is split into the batches of the local replicas.
            def window_draws(groups, file_indices):
                indices = indices_of(groups)  # [share, N]
                draws = self._draws_of(tf.repeat(file_indices[:, None], count, axis=1), indices)
                return tf.transpose(draws, [1, 0, 2]), tf.transpose(indices)

            def local_batches(draws, indices):  # [share, ...] -> [share / local, local, ...]
                return (tf.reshape(draws, [share // local, local, 5]),
                        tf.reshape(indices, [share // local, local]))
            ds = ds.batch(share, drop_remainder=True).map(window_draws).unbatch()
            ds = ds.skip(start % window // batch).map(local_batches).unbatch()
            read = self._read_batch()  # draws -> uint8 crops, in the same map as the downsample
        else:
            group_crops = self._group_crops()

            def crops_of_group(group, file_index):
                indices = indices_of(group)
                return group_crops(file_index, indices), indices

            def crops_first(c):  # [share, N, ...] -> [N, share, ...]
                return tf.transpose(c, [1, 0] + list(range(2, len(c.shape))))
            ds = ds.map(crops_of_group, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if count > 1:  # [share groups, N crops] -> N rows of `share` elements, row by row
                ds = ds.batch(share, drop_remainder=True).map(
                    lambda c, i: (crops_first(c), tf.transpose(i)))
                ds = ds.unbatch()
            ds = ds.unbatch()  # (uint8 HR crop, element index)
            ds = ds.skip(start % window // batch * share).batch(local, drop_remainder=True)
            read = tf.identity  # the crops themselves
        if self.degradation == "realistic":  # per element, seeded by its index
            ds = ds.map(lambda x, index: (read(x), index), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
            ds = ds.unbatch().map(lambda hr_u8, index: realistic_pair(hr_u8, tf.stack(
                [tf.constant(seed, tf.int64), index])), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
            ds = ds.batch(local, drop_remainder=True)
        elif self._fixed is not None:  # one bicubic per batch, then the degradation per element
            ds = ds.map(lambda x, index: degraded_pairs_of_batch(read(x), index, self._fixed, seed),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:  # one bicubic per batch
            ds = ds.map(lambda x, index: pairs_of_batch(read(x)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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
        crops = []
        for i, f in enumerate(self.files[:count]):
            image = self._images[i] if self._images is not None else decode_image(f)
            y = (f.height - self.crop_size) // 2 // SCALE * SCALE
            x = (f.width - self.crop_size) // 2 // SCALE * SCALE
            crops.append(image[y:y + self.crop_size, x:x + self.crop_size])
        return pairs_of_batch(tf.constant(np.stack(crops)))
