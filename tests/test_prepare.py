"""The decode-once store: writing it (prepare), reading it back, refusing what it can't serve."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import data, prepare, store, trainer
from srgan_tf.config import Recipe, TrainConfig
from tests.conftest import REPO, write_images


def _store(tmp_path, sizes=((48, 56), (64, 64), (56, 48), (64, 60)), **kwargs):
    hr = tmp_path / "hr"
    write_images(hr, list(sizes))
    out = tmp_path / "store"
    prepare.write_store(str(out), hr_dir=str(hr), min_size=32, **kwargs)
    return hr, out


def _scan(folder, crop=32):
    return data.scan_images(data.list_images(str(folder)), crop)[0]


@pytest.mark.parametrize("strip_width", [store.STRIP_WIDTH, 20])
def test_store_round_trip_is_pixel_exact(tmp_path, strip_width):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 56), (64, 64)])
    rgb = np.asarray(Image.open(hr / "img00.png"))
    Image.fromarray(rgb).convert("CMYK").save(hr / "cmyk.jpg")  # decoded through PIL
    Image.fromarray(rgb.mean(axis=2).astype(np.uint8)).save(hr / "gray.png")
    out = tmp_path / "store"
    manifest = prepare.write_store(str(out), hr_dir=str(hr), min_size=32, strip_width=strip_width)
    assert manifest["strip_width"] == strip_width
    stored, read_back = data.store_files(str(out), 32)
    assert read_back == manifest and manifest["usable"] == len(stored) == 4
    for file, entry in zip(_scan(hr), manifest["images"]):
        assert entry["source"] == file.path
        expected = data.decode_image(file)
        path = os.path.join(out, entry["file"])
        size = (entry["height"], entry["width"], strip_width)
        np.testing.assert_array_equal(store.read_image(path, *size), expected)
        # Crops inside one strip, across two and across three (with 20-column strips).
        for y, x in ((8, 12), (0, 0), (16, 4), (4, entry["width"] - 32)):
            np.testing.assert_array_equal(store.read_crop(path, *size, y, x, 32),
                                          expected[y:y + 32, x:x + 32])


def test_version_1_store_of_whole_rows_still_reads(tmp_path):
    hr, out = _store(tmp_path)
    files = _scan(hr)
    manifest = json.loads((out / "manifest.json").read_text())
    for file, entry in zip(files, manifest["images"]):  # rewrite as version 1: whole rows
        data.decode_image(file).tofile(out / entry["file"])
    del manifest["strip_width"]
    (out / "manifest.json").write_text(json.dumps(dict(manifest, format_version=1)))
    stored = data.store_files(str(out), 32)[0]
    assert [f.strip_width for f in stored] == [f.width for f in stored]
    from_files = [hr.numpy() for _, hr in data.TrainingData(files, 32, 3, seed=5).dataset().take(3)]
    from_store = [hr.numpy() for _, hr in data.TrainingData(stored, 32, 3, seed=5).dataset().take(3)]
    np.testing.assert_array_equal(np.stack(from_files), np.stack(from_store))


def test_store_streams_the_same_batches_as_the_files(tmp_path):
    hr, out = _store(tmp_path, strip_width=20)  # 32-pixel crops span two or three strips
    stored = data.store_files(str(out), 32)[0]
    # The store reads each batch's crops in one call, flipped and rotated in numpy; the files
    # path crops and augments per element in TensorFlow: the same draws give the same pixels.
    for augment, count in (("none", 1), ("flip", 1), ("flip_rot90", 1), ("flip_rot90", 3)):
        files = [hr.numpy() for _, hr in data.TrainingData(
            _scan(hr), 32, 3, seed=5, augment=augment, crops_per_image=count).dataset(2).take(4)]
        from_store = [hr.numpy() for _, hr in data.TrainingData(
            stored, 32, 3, seed=5, augment=augment, crops_per_image=count).dataset(2).take(4)]
        np.testing.assert_array_equal(np.stack(files), np.stack(from_store))


def test_manifest_records_source_scan_and_largest_crop(tmp_path):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 70), (66, 64), (20, 20)])
    (hr / "broken.png").write_text("not a PNG")
    manifest = prepare.write_store(str(tmp_path / "store"), hr_dir=str(hr), min_size=32)
    assert manifest["source"] == {"hr_dir": str(hr)}
    assert manifest["format_version"] == store.FORMAT_VERSION
    assert (manifest["scanned"], manifest["usable"]) == (4, 2)
    assert manifest["max_crop"] == 48  # the smallest side kept, on the x4 grid
    assert {os.path.basename(s["path"]) for s in manifest["skipped"]} == {"img02.png",
                                                                         "broken.png"}
    with pytest.raises(ValueError, match="serves crops up to 48 .*not --crop_size 52"):
        data.store_files(str(tmp_path / "store"), 52)


@pytest.mark.parametrize("damage, message", [
    (lambda out: os.remove(out / "manifest.json"), "has no manifest.json"),
    (lambda out: (out / "manifest.json").write_text("{truncated"), "corrupt manifest.json"),
    (lambda out: (out / "manifest.json").write_text(json.dumps(
        dict(json.loads((out / "manifest.json").read_text()), format_version=99))),
     "format version 99"),
    (lambda out: os.remove(out / "images" / "000001.rgb"), "000001.rgb is missing"),
    (lambda out: open(out / "images" / "000002.rgb", "r+b").truncate(100),
     "000002.rgb holds 100 bytes"),
])
def test_damaged_store_is_refused_with_one_line(tmp_path, damage, message):
    _, out = _store(tmp_path)
    damage(out)
    with pytest.raises((ValueError, FileNotFoundError), match=message) as error:
        data.store_files(str(out), 32)
    assert "\n" not in str(error.value)


def test_store_is_never_overwritten_without_the_flag(tmp_path):
    hr, out = _store(tmp_path)
    before = (out / "manifest.json").read_text()
    with pytest.raises(FileExistsError, match="--output .* exists: pass --overwrite"):
        prepare.write_store(str(out), hr_dir=str(hr), min_size=32)
    assert (out / "manifest.json").read_text() == before
    (hr / "img00.png").unlink()
    manifest = prepare.write_store(str(out), hr_dir=str(hr), min_size=32, overwrite=True)
    assert manifest["usable"] == 3 and len(os.listdir(out / "images")) == 3
    assert sorted(os.listdir(tmp_path)) == ["hr", "store"]  # nothing left aside


def test_failed_prepare_leaves_no_store(tmp_path, monkeypatch):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 48)] * 4)
    calls = []

    def decode_then_fail(file):
        calls.append(file)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a Ctrl-C in the middle of the writes
        return real(file)

    real = data.decode_image
    monkeypatch.setattr(data, "decode_image", decode_then_fail)
    with pytest.raises(KeyboardInterrupt):
        prepare.write_store(str(tmp_path / "store"), hr_dir=str(hr), min_size=32, workers=1)
    assert sorted(os.listdir(tmp_path)) == ["hr"]


def test_train_config_takes_exactly_one_source(tmp_path):
    _, out = _store(tmp_path)
    with pytest.raises(ValueError, match="exactly one of --hr_dir, --tfds or --store, got "
                                         "--hr_dir and --store"):
        TrainConfig(stage="init", checkpoint_dir="run", hr_dir=str(tmp_path / "hr"),
                    store=str(out)).validate()


def test_training_from_a_store_refuses_a_larger_crop(tmp_path, tiny_recipe):
    _, out = _store(tmp_path)
    config = TrainConfig(stage="init", checkpoint_dir=str(tmp_path / "run"), store=str(out),
                         recipe=Recipe(**dict(vars(tiny_recipe), crop_size=64))).validate()
    with pytest.raises(ValueError, match="serves crops up to 48 .*not --crop_size 64"):
        trainer.prepare_data(config)
    config = TrainConfig(stage="init", checkpoint_dir=str(tmp_path / "run"), store=str(out),
                         recipe=tiny_recipe).validate()
    stream = trainer.prepare_data(config)
    assert len(stream.files) == 4 and stream.crops_per_image == 1 and stream.files[0].raw


def _run(module, *args):
    """Runs `python -m module` (or a script of the repository) with `args`."""
    command = [module] if module.endswith(".py") else ["-m", module]
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *command, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_cli_names_each_bad_file_once_and_train_refuses_with_one_line(tmp_path):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 48), (40, 40)])
    (hr / "broken.jpg").write_text("not a JPEG")
    result = _run("srgan_tf.prepare", "--hr_dir", hr, "--output", tmp_path / "store",
                  "--min_size", 32)
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stderr.splitlines() if "broken.jpg" in line]) == 1
    train = _run("train.py", "--stage", "init", "--checkpoint_dir", tmp_path / "run",
                 "--store", tmp_path / "store", "--crop_size", 96, "--vgg_weights", "none")
    assert train.returncode == 2
    assert train.stderr.strip().splitlines()[-1] == (
        f"error: --store {str(tmp_path / 'store')!r} serves crops up to 40 (its smallest "
        "image), not --crop_size 96: prepare it again with --min_size 96 or lower --crop_size")


def test_store_from_tfds(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        manifest = prepare.write_store(str(tmp_path / "store"), tfds="div2k/bicubic_x4",
                                       tfds_data_dir=str(tmp_path / "tfds"), min_size=8)
    assert manifest["source"]["tfds"] == "div2k/bicubic_x4" and manifest["usable"] == 3
    stored = data.store_files(str(tmp_path / "store"), 8)[0]
    lr, hr = next(iter(data.TrainingData(stored, 8, 2).dataset()))
    assert lr.shape == (2, 2, 2, 3) and hr.shape == (2, 8, 8, 3)
