"""Input pipeline: file discovery, decoding, crops, LR generation, determinism and resume."""

import gc
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import data, imaging
from tests.conftest import write_images


def _files(folder, crop):
    return data.scan_images(data.list_images(str(folder)), crop)[0]


def test_list_images_is_recursive_and_case_insensitive(tmp_path):
    for name in ["a.PNG", "sub/b.jpg", "sub/deeper/c.JpEg", "d.bmp", "e.webp", "notes.txt", "f.gif",
                 "g.TIFF", "h.jpg.bak"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [os.path.relpath(p, tmp_path) for p in data.list_images(str(tmp_path))]
    assert sorted(found) == sorted(["a.PNG", "sub/b.jpg", "sub/deeper/c.JpEg", "d.bmp", "e.webp",
                                    "f.gif", "g.TIFF"])


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--hr_dir .*nope.* is not a directory"):
        data.list_images(str(tmp_path / "nope"))


def test_small_and_broken_images_are_skipped_by_name(tmp_path):
    write_images(tmp_path, [(64, 64), (30, 80)])
    (tmp_path / "broken.jpg").write_text("not an image")
    files, skipped = data.scan_images(data.list_images(str(tmp_path)), 32)
    assert [os.path.basename(f.path) for f in files] == ["img00.png"]
    reasons = {os.path.basename(p): r for p, r in skipped}
    assert "smaller than the 32x32 crop" in reasons["img01.png"]
    assert "cannot decode" in reasons["broken.jpg"]


def test_no_usable_image_is_an_error():
    with pytest.raises(ValueError, match="no usable training images"):
        data.TrainingData([], 32, 2)


def test_pairs_are_aligned_in_range_and_lr_is_antialiased_bicubic(image_dir):
    stream = data.TrainingData(_files(image_dir, 32), crop_size=32, batch_size=3, augment="flip_rot90")
    for lr, hr in stream.dataset().take(4):
        assert lr.shape == (3, 8, 8, 3) and hr.shape == (3, 32, 32, 3)
        assert lr.dtype == tf.float32 and hr.dtype == tf.float32
        assert float(tf.reduce_min(hr)) >= -1 and float(tf.reduce_max(hr)) <= 1
        expected = tf.image.resize(hr, [8, 8], method="bicubic", antialias=True)
        np.testing.assert_allclose(lr.numpy(), expected.numpy(), atol=1e-5)
        # Antialiasing matters: plain bicubic sampling gives a different LR.
        aliased = tf.image.resize(hr, [8, 8], method="bicubic", antialias=False)
        assert float(tf.reduce_max(tf.abs(lr - aliased))) > 0.05


def test_hr_crop_is_a_crop_of_the_image_on_the_lr_grid(tmp_path):
    write_images(tmp_path, [(48, 60)])
    image = np.asarray(Image.open(tmp_path / "img00.png"))
    stream = data.TrainingData(_files(tmp_path, 32), crop_size=32, batch_size=1, augment="none")
    for _, hr in stream.dataset().take(5):
        hr_u8 = imaging.signed_to_uint8(hr[0]).numpy()
        hits = [(y, x) for y in range(0, 17) for x in range(0, 29)
                if np.array_equal(image[y:y + 32, x:x + 32], hr_u8)]
        assert hits and all(y % 4 == 0 and x % 4 == 0 for y, x in hits)


def test_augmentation_flips_and_rotates_whole_pairs(tmp_path):
    write_images(tmp_path, [(32, 32)])
    image = imaging.uint8_to_signed(np.asarray(Image.open(tmp_path / "img00.png"))).numpy()
    variants = [np.rot90(im, k) for im in (image, image[:, ::-1]) for k in range(4)]
    stream = data.TrainingData(_files(tmp_path, 32), crop_size=32, batch_size=1, augment="flip_rot90")
    seen = set()
    for lr, hr in stream.dataset().take(40):
        match = [i for i, v in enumerate(variants) if np.allclose(v, hr[0].numpy(), atol=1e-6)]
        assert len(match) == 1
        seen.add(match[0])
        np.testing.assert_allclose(lr.numpy(), imaging.bicubic_downsample(hr).numpy(), atol=1e-5)
    assert len(seen) >= 6  # most of the 8 orientations appear in 40 draws


def test_stream_is_deterministic_and_resumes_at_any_step(image_dir):
    files = _files(image_dir, 32)
    full = [hr.numpy() for _, hr in data.TrainingData(files, 32, 4, seed=7).dataset().take(7)]
    again = [hr.numpy() for _, hr in data.TrainingData(files, 32, 4, seed=7).dataset().take(7)]
    resumed = [hr.numpy() for _, hr in
               data.TrainingData(files, 32, 4, seed=7).dataset(start_step=3).take(4)]
    other = [hr.numpy() for _, hr in data.TrainingData(files, 32, 4, seed=8).dataset().take(1)]
    np.testing.assert_array_equal(np.stack(full), np.stack(again))
    np.testing.assert_array_equal(np.stack(full[3:]), np.stack(resumed))
    assert not np.array_equal(full[0], other[0])


def test_each_epoch_visits_every_image_once(tmp_path):
    # Six flat images of distinct grey levels: the crop reveals which file it came from.
    for i in range(6):
        Image.fromarray(np.full((40, 40, 3), 40 * i, np.uint8)).save(tmp_path / f"g{i}.png")
    stream = data.TrainingData(_files(tmp_path, 32), 32, batch_size=4, augment="none")
    assert stream.steps_per_epoch == 1 and stream.per_epoch == 4  # drop the remainder
    hr = np.concatenate([h.numpy() for _, h in stream.dataset().take(3)])
    levels = [int(imaging.signed_to_uint8(h).numpy()[0, 0, 0]) // 40 for h in hr]
    for epoch in range(3):
        assert len(set(levels[4 * epoch:4 * epoch + 4])) == 4


def test_folder_smaller_than_a_batch_still_streams(image_dir):
    stream = data.TrainingData(_files(image_dir, 32)[:2], 32, batch_size=5)
    assert stream.steps_per_epoch == 1
    lr, hr = next(iter(stream.dataset()))
    assert hr.shape == (5, 32, 32, 3)


@pytest.mark.parametrize("augment", ["none", "flip", "flip_rot90"])
def test_cache_yields_the_same_stream(image_dir, augment):
    files = _files(image_dir, 32)
    plain = [hr.numpy() for _, hr in
             data.TrainingData(files, 32, 3, augment=augment).dataset(2).take(3)]
    cached = [hr.numpy() for _, hr in
              data.TrainingData(files, 32, 3, augment=augment, cache=True).dataset(2).take(3)]
    np.testing.assert_array_equal(np.stack(plain), np.stack(cached))


def test_odd_image_modes_decode_to_rgb(tmp_path):
    rgb = np.asarray(Image.open(write_images(tmp_path / "src", [(40, 40)])[0]))
    gray = rgb.mean(axis=2).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(gray.shape, 128, np.uint8)])).save(tmp_path / "rgba.png")
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "palette.png")
    palette.save(tmp_path / "palette.gif")
    cmyk = np.dstack([rgb, rgb[..., ::-1].min(axis=2)])
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "photo.webp", lossless=True)
    files = {os.path.basename(f.path): f for f in _files(tmp_path, 32)}
    assert set(files) >= {"gray.png", "rgba.png", "palette.png", "palette.gif", "gray16.png",
                          "cmyk.jpg", "cmyk.tif", "photo.webp"}
    assert files["cmyk.jpg"].needs_pil and files["cmyk.tif"].needs_pil
    assert not files["rgba.png"].needs_pil and not files["palette.png"].needs_pil
    decoded = {name: data._decode_file(tf.constant(f.path), tf.constant(f.needs_pil)).numpy()
               for name, f in files.items()}
    assert all(image.shape == (40, 40, 3) and image.dtype == np.uint8 for image in decoded.values())
    np.testing.assert_array_equal(decoded["gray.png"], np.dstack([gray] * 3))
    np.testing.assert_array_equal(decoded["gray16.png"], np.dstack([gray] * 3))
    np.testing.assert_array_equal(decoded["rgba.png"], rgb)
    np.testing.assert_array_equal(decoded["photo.webp"], rgb)
    lut = np.array(palette.getpalette(), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(decoded["palette.png"], lut[np.asarray(palette)])
    np.testing.assert_array_equal(decoded["palette.gif"], lut[np.asarray(palette)])
    # PIL's CMYK -> RGB: R = (255 - C) (255 - K) / 255, rounded.
    ink = (255.0 - cmyk[..., :3]) * (255.0 - cmyk[..., 3:]) / 255.0
    assert np.abs(decoded["cmyk.tif"] - ink).max() < 1
    assert np.abs(decoded["cmyk.jpg"].astype(int) - rgb).mean() < 8


def test_fixed_batch_is_centre_crops(image_dir):
    stream = data.TrainingData(_files(image_dir, 32), 32, 2)
    lr, hr = stream.fixed_batch(3)
    assert lr.shape == (3, 8, 8, 3) and hr.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(stream.fixed_batch(3)[1].numpy(), hr.numpy())


BOMB_SIDE = 12000


def test_bomb_header_lies_between_our_limit_and_pils():
    # Else PIL's own DecompressionBombError (or nothing) would decide the bomb test.
    assert data.MAX_IMAGE_PIXELS < BOMB_SIDE ** 2 < 2 * Image.MAX_IMAGE_PIXELS


def _messy_folder(folder):
    """The folder of the reliability issue: every kind of file a real photo folder holds."""
    rgb = np.asarray(Image.open(write_images(folder / "ok", [(48, 48)])[0]))
    gray = rgb.mean(axis=2).astype(np.uint8)
    good = {"ok/img00.png"}
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(gray.shape, 200, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "gray16.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb).convert("P").save(folder / "palette.gif")
    good |= {"gray.png", "rgba.png", "gray16.png", "cmyk.jpg", "palette.gif"}
    whole = (folder / "ok" / "img00.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a JPEG")
    Image.fromarray(rgb[:20, :20]).save(folder / "small.png")
    # A valid PNG header declaring 12000 x 12000 pixels (a decompression bomb): above our limit,
    # below the 2x Image.MAX_IMAGE_PIXELS where PIL would raise DecompressionBombError itself.
    header = bytearray(whole[:33])
    header[16:24] = (BOMB_SIDE).to_bytes(4, "big") * 2
    import zlib
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")
    (folder / "bomb.png").write_bytes(bytes(header) + whole[33:])
    os.symlink("loop_b.png", folder / "loop_a.png")
    os.symlink("loop_a.png", folder / "loop_b.png")
    os.symlink(".", folder / "dir_loop")
    (folder / "notes.txt").write_text("not an image")
    bad = {"truncated.png": "cannot decode", "empty.png": "cannot decode",
           "text.jpg": "cannot decode", "small.png": "smaller than the 32x32 crop",
           "bomb.png": f"{BOMB_SIDE}x{BOMB_SIDE} is above the {data.MAX_IMAGE_PIXELS} pixel limit",
           "loop_a.png": "cannot", "loop_b.png": "cannot"}
    return good, bad


def test_messy_folder_keeps_every_usable_image_and_names_each_bad_one(tmp_path):
    good, bad = _messy_folder(tmp_path)
    files, skipped = data.scan_images(data.list_images(str(tmp_path)), 32)
    assert {os.path.relpath(f.path, tmp_path) for f in files} == good
    reasons = {os.path.relpath(p, tmp_path): r for p, r in skipped}
    assert set(reasons) == set(bad)
    for name, reason in bad.items():
        assert reason in reasons[name], (name, reasons[name])
    # Every usable file decodes to RGB through the training decoder.
    for f in files:
        image = data._decode_file(tf.constant(f.path), tf.constant(f.needs_pil)).numpy()
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    stream = data.TrainingData(files, 32, 4)
    for lr, hr in stream.dataset().take(4):
        assert np.all(np.isfinite(hr.numpy()))


def test_scan_cache_reuses_results_and_notices_changes(tmp_path):
    write_images(tmp_path / "hr", [(48, 48), (40, 40)])
    cache = str(tmp_path / "run" / "scan.json")
    paths = data.list_images(str(tmp_path / "hr"))
    first = data.scan_images(paths, 32, cache)
    entries = json.loads(open(cache).read())
    assert set(entries) == set(paths)
    # A cached result is used as is (here: doctored to prove it is read)...
    entries[paths[1]]["reason"], entries[paths[1]]["file"] = "doctored", None
    with open(cache, "w") as f:
        json.dump(entries, f)
    files, skipped = data.scan_images(paths, 32, cache)
    assert skipped == [(paths[1], "doctored")]
    # ...until the file changes.
    (tmp_path / "hr" / "img01.png").write_bytes(b"broken now")
    files, skipped = data.scan_images(paths, 32, cache)
    assert [f.path for f in files] == [paths[0]] and "cannot decode" in skipped[0][1]
    assert [f.path for f in first[0]] == paths


def test_tfds_div2k_hr_images_are_written_once_as_pngs(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        out = data.materialize_tfds("div2k/bicubic_x4", str(tmp_path))
    assert out == str(tmp_path / "srgan_tf_hr" / "div2k_bicubic_x4")
    assert sorted(os.listdir(out)) == [".complete", "0001.png", "0002.png", "0003.png"]
    files, skipped = data.scan_images(data.list_images(out), 8)
    assert len(files) == 3 and not skipped
    # Prepared once: a second call does not read tfds again.
    assert data.materialize_tfds("div2k/bicubic_x4", str(tmp_path)) == out


def test_batched_bicubic_matches_the_per_element_lr(image_dir):
    stream = data.TrainingData(_files(image_dir, 32), 32, 4, seed=2, crops_per_image=2)
    for lr, hr in stream.dataset(1).take(3):
        hr_u8 = imaging.signed_to_uint8(hr)  # exact: hr is a uint8 crop scaled to [-1, 1]
        for i in range(4):
            # Today's per-element path: one resize of one [1, c, c, 3] crop.
            expected = imaging.bicubic_downsample(imaging.uint8_to_signed(hr_u8[i])[None])[0]
            np.testing.assert_allclose(lr[i].numpy(), expected.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("crops", [2, 3])
def test_crops_per_image_is_a_pure_function_of_the_element_index(tmp_path, crops):
    # Eight flat images of distinct grey levels: a crop reveals its file.
    for i in range(8):
        Image.fromarray(np.full((40, 40, 3), 30 * i, np.uint8)).save(tmp_path / f"g{i}.png")
    files = _files(tmp_path, 32)
    stream = data.TrainingData(files, 32, 4, seed=3, crops_per_image=crops)
    assert stream.steps_per_epoch == crops * 2
    full = [hr.numpy() for _, hr in stream.dataset().take(3 * crops + 1)]
    for start in range(1, 2 * crops):
        resumed = [hr.numpy() for _, hr in data.TrainingData(
            files, 32, 4, seed=3, crops_per_image=crops).dataset(start).take(3)]
        np.testing.assert_array_equal(np.stack(full[start:start + 3]), np.stack(resumed))
    levels = [[int(imaging.signed_to_uint8(h).numpy()[0, 0, 0]) // 30 for h in batch]
              for batch in full]
    for window in range(3):
        rows = levels[window * crops:(window + 1) * crops]
        assert len(set(rows[0])) == 4  # four different images per batch...
        assert all(row == rows[0] for row in rows)  # ...each read once for `crops` batches
    # An epoch (two windows here) reads every image once.
    assert sorted(levels[0] + levels[crops]) == list(range(8))
    # Element k's crop and flips follow from (seed, k) alone: from one image, N changes nothing.
    write_images(tmp_path / "one", [(64, 60)])
    one = _files(tmp_path / "one", 32)
    streams = [np.stack([hr.numpy() for _, hr in data.TrainingData(
        one, 32, 4, seed=3, crops_per_image=n).dataset(1).take(2 * crops)]) for n in (1, crops)]
    np.testing.assert_array_equal(*streams)


def test_store_pipelines_read_only_their_share(tmp_path, monkeypatch):
    from srgan_tf import prepare, store
    write_images(tmp_path / "hr", [(200, 240), (240, 200), (220, 220), (200, 200)])
    prepare.write_store(str(tmp_path / "store"), hr_dir=str(tmp_path / "hr"), min_size=32)
    files = data.store_files(str(tmp_path / "store"), 32)[0]
    stream = data.TrainingData(files, 32, 4, seed=1, augment="none")
    batches = iter(stream.dataset(1))
    whole = np.stack([next(batches)[1].numpy() for _ in range(12)])  # [12, 4, ...]
    del batches
    gc.collect()
    time.sleep(0.5)
    real, reads = store.read_crop, []
    monkeypatch.setattr(store, "read_crop", lambda *a: reads.append(real(*a)) or reads[-1])
    key = lambda crop_u8: crop_u8.tobytes()  # noqa: E731
    pipelines = {}  # crop -> pipelines whose share holds it
    for t in range(12):
        for s in range(4):
            pipelines.setdefault(key(imaging.signed_to_uint8(whole[t, s]).numpy()), set()).add(
                s // 2)
    for pipeline in (0, 1):
        batches = iter(stream.dataset(1, tf.distribute.InputContext(2, pipeline, 2)))
        shard = [next(batches)[1].numpy() for _ in range(3)]
        del batches  # stops its prefetching threads
        gc.collect()
        time.sleep(0.5)
        np.testing.assert_array_equal(np.stack(shard),
                                      whole[:3, 2 * pipeline:2 * pipeline + 2])
        assert len(reads) >= 6 and all(pipelines[key(r)] == {pipeline} for r in reads)
        reads.clear()


@pytest.mark.slow
def test_cache_beyond_2gb(tmp_path):
    """A cache of 2.4 GB of decoded pixels (8 raw 10000x10000 images, sparse files on disk)."""
    from srgan_tf import store
    side, count, crop = 10_000, 8, 32
    files = []
    for i in range(count):
        path = tmp_path / f"{i}.rgb"
        with open(path, "wb") as f:
            f.truncate(side * side * 3)  # zeros, written as a hole: costs no disk
            top = (side - crop) // 2 // 4 * 4  # the centre crop of fixed_batch holds i + 1
            for row in range(top, top + crop):
                f.seek((row * side + top) * 3)
                f.write(bytes([i + 1]) * crop * 3)
        files.append(data.ImageFile(str(path), side, side, False, raw=True, strip_width=side))
    stream = data.TrainingData(files, crop, batch_size=4, seed=0, cache=True)
    lr, hr = next(iter(stream.dataset()))
    assert sum(image.nbytes for image in stream._images) > 2 ** 31
    assert hr.shape == (4, crop, crop, 3) and lr.shape == (4, crop // 4, crop // 4, 3)
    _, centres = stream.fixed_batch(count)
    levels = imaging.signed_to_uint8(centres).numpy()
    assert [int(v) for v in levels[:, 0, 0, 0]] == list(range(1, count + 1))
    assert all(np.all(levels[i] == i + 1) for i in range(count))
    del store


def test_augment_and_crops_per_image_defaults():
    from srgan_tf.config import FILE_CROPS_PER_IMAGE, Recipe, TrainConfig
    run = dict(stage="init", checkpoint_dir="run")
    assert TrainConfig(**run, hr_dir="x").augment == "none"  # TensorLayer: random crops only
    paper = TrainConfig(**run, hr_dir="x", recipe=Recipe.from_preset("paper"))
    assert paper.augment == "flip_rot90"
    assert TrainConfig(**run, hr_dir="x", augment="flip").augment == "flip"
    assert TrainConfig(**run, hr_dir="x").crops_per_image == FILE_CROPS_PER_IMAGE
    assert TrainConfig(**run, store="s").crops_per_image == 1
    assert TrainConfig(**run, hr_dir="x", cache=True).crops_per_image == 1
    with pytest.raises(ValueError, match="--augment must be one of none, flip, flip_rot90"):
        data.TrainingData([data.ImageFile("a.png", 32, 32, False)], 32, 1, augment=True)

def _degraded_streams(files, degradation, seed, count, resume_at):
    """(full, resumed, clean): `count` batches of 2 at crop 32 with `degradation`, the same
    stream resumed at step `resume_at` (checked equal to the full one from there), and the
    bicubic stream of the same seed."""
    def stream(start_step, kind, take):
        ds = data.TrainingData(files, 32, 2, seed=seed, degradation=kind).dataset(start_step)
        return [(lr.numpy(), hr.numpy()) for lr, hr in ds.take(take)]

    full, resumed = stream(0, degradation, count), stream(resume_at, degradation, count - resume_at)
    for (lr, hr), (lr2, hr2) in zip(full[resume_at:], resumed):
        np.testing.assert_array_equal(lr, lr2)
        np.testing.assert_array_equal(hr, hr2)
    return full, resumed, stream(0, "bicubic", count)


def test_realistic_degradation_is_per_element_and_resumes(image_dir):
    full, _, clean = _degraded_streams(_files(image_dir, 32), "realistic", 3, 5, 2)
    for (lr, hr), (lr_clean, hr_clean) in zip(full, clean):
        np.testing.assert_array_equal(hr, hr_clean)  # the same HR crops: only the LR changes
        assert lr.shape == lr_clean.shape == (2, 8, 8, 3)
        assert lr.min() >= -1.0 and lr.max() <= 1.0
    assert any(not np.allclose(lr, lr_clean, atol=2 / 255) for (lr, _), (lr_clean, _)
               in zip(full, clean))


@pytest.mark.parametrize("crops", [1, 2])
def test_realistic_lr_of_element_k_is_drawn_from_seed_and_k(image_dir, crops):
    from srgan_tf import degradations
    stream = data.TrainingData(_files(image_dir, 32), 32, 2, seed=5, crops_per_image=crops,
                               degradation="realistic")
    for t, (lr, hr) in enumerate(stream.dataset(start_step=1).take(3), start=1):
        for s in range(2):
            hr_u8 = imaging.signed_to_uint8(hr[s])
            seed = tf.random.experimental.stateless_fold_in(tf.constant([5, 2 * t + s], tf.int64), 1)
            expected = degradations.realistic_lr(tf.cast(hr_u8, tf.float32) / 255.0, seed)
            np.testing.assert_allclose(lr[s].numpy(), imaging.unit_to_signed(expected).numpy(),
                                       atol=1e-6)


@pytest.mark.parametrize("spec", ["jpeg:50", "noise:10", "blur:1.5"])
def test_fixed_degradation_degrades_the_bicubic_lr_as_evaluate_does(image_dir, spec):
    # --degradation KIND:VALUE trains on what `evaluate --degradation KIND:VALUE` scores: the
    # batch's bicubic LR, rounded to 8 bits, then degrade_fixed (noise seeded by the index).
    from srgan_tf import degradations
    from srgan_tf.config import parse_degradation
    full, _, clean = _degraded_streams(_files(image_dir, 32), spec, 7, 3, 1)
    for t, ((lr, hr), (lr_clean, hr_clean)) in enumerate(zip(full, clean)):
        np.testing.assert_array_equal(hr, hr_clean)
        for s in range(2):
            seed = tf.random.experimental.stateless_fold_in(
                tf.constant([7, 2 * t + s], tf.int64), 1)
            expected = degradations.degrade_fixed(imaging.signed_to_uint8(lr_clean[s]),
                                                  parse_degradation(spec), seed)
            np.testing.assert_array_equal(imaging.signed_to_uint8(lr[s]).numpy(), expected)
        assert not np.allclose(lr, lr_clean, atol=2 / 255)


def test_fixed_degradation_is_refused_in_one_line(tmp_path):
    from srgan_tf.config import TrainConfig
    image = [data.ImageFile("a.png", 32, 32, False)]
    for bad in ("jpeg:0", "jpeg", "sharpen:2", "noise:-1"):
        with pytest.raises(ValueError, match="^--degradation must be bicubic, realistic, "
                                             "jpeg:QUALITY .* got '" + bad + "'$"):
            data.TrainingData(image, 32, 1, degradation=bad)
        with pytest.raises(ValueError, match="^--degradation must be"):
            TrainConfig(stage="init", checkpoint_dir="run", hr_dir=str(tmp_path),
                        degradation=bad).validate()
    with pytest.raises(ValueError, match="^--degradation blur:3 reaches 9 LR pixels: "
                                         "--crop_size must be above 36, got 32$"):
        data.TrainingData(image, 32, 1, degradation="blur:3")


def _splitmix64(seed, position):
    """SplitMix64 (Steele, Lea and Flood 2014) in numpy: value `position` of the sequence of
    `seed`, the reference of `data.crop_draws`."""
    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
    with np.errstate(over="ignore"):
        return mix(mix(np.uint64(seed)) + np.uint64(position) * np.uint64(0x9E3779B97F4A7C15))


def test_crop_draws_are_splitmix64_of_the_seed_and_element_index():
    indices = np.array([0, 1, 7, 10**9, 2**40 + 3], np.int64)
    heights = np.array([100, 384, 1356, 500, 97], np.int32)
    widths = np.array([200, 388, 2040, 96, 4000], np.int32)
    draws = data.crop_draws(5, indices, heights, widths, 96, "flip_rot90").numpy()
    for row, k, h, w in zip(draws, indices, heights, widths):
        bounds = (int(h - 96) // 4 + 1, int(w - 96) // 4 + 1, 2, 4)
        expected = [int((int(_splitmix64(5, 4 * int(k) + d + 1)) >> 32) * b >> 32)
                    for d, b in enumerate(bounds)]
        assert list(row) == [expected[0] * 4, expected[1] * 4, expected[2], expected[3]]
        # One element alone draws what it draws in a batch: a pure function of (seed, k).
        alone = data.crop_draws(5, [k], [h], [w], 96, "flip_rot90").numpy()[0]
        np.testing.assert_array_equal(alone, row)
    flips_only = data.crop_draws(5, indices, heights, widths, 96, "flip").numpy()
    np.testing.assert_array_equal(flips_only[:, :3], draws[:, :3])
    assert not flips_only[:, 3].any()
    assert not data.crop_draws(5, indices, heights, widths, 96, "none").numpy()[:, 2:].any()


def test_crop_draws_are_uniform_and_independent():
    n = 40_000
    draws = data.crop_draws(11, np.arange(n, dtype=np.int64), np.full(n, 96 + 4 * 9, np.int32),
                            np.full(n, 96 + 4 * 4, np.int32), 96, "flip_rot90").numpy()
    for column, bound in ((0, 10), (1, 5), (2, 2), (3, 4)):
        values = draws[:, column] // (4 if column < 2 else 1)
        counts = np.bincount(values, minlength=bound)
        assert len(counts) == bound and values.min() == 0
        # Chi-square against uniform, far below its 0.1% critical value (27.9 for 9 dof).
        chi2 = ((counts - n / bound) ** 2 / (n / bound)).sum()
        assert chi2 < 28, (column, counts)
    joint = np.bincount(draws[:, 0] // 4 * 5 + draws[:, 1] // 4, minlength=50)
    assert ((joint - n / 50) ** 2 / (n / 50)).sum() < 86  # 0.1% critical value, 49 dof
