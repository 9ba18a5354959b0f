"""Tests of srgan_tf.serving: the TF Serving export, its signatures, TFLite and .keras copies."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import loading, serving
from srgan_tf.imaging import read_rgb, uint8_to_signed
from srgan_tf.models import Generator
from tests.conftest import SAMPLE_DIR, lively_generator

TILE = 24  # small tiles, so that the 64x64 test images are tiled inside the graph
MAX_PIXELS = 100 * 100


def keras_unit(generator, image_u8):
    """The Keras generator's output for uint8 [H, W, 3] (or [N, H, W, 3]), as float64 in [0, 1]."""
    batch = image_u8 if image_u8.ndim == 4 else image_u8[np.newaxis]
    sr = generator(uint8_to_signed(batch), training=False).numpy().astype(np.float64)
    sr = np.clip((sr + 1.0) / 2.0, 0.0, 1.0)
    return sr if image_u8.ndim == 4 else sr[0]


def encode(image, fmt="PNG"):
    """Encodes a numpy array (or a PIL image) with PIL and returns the file bytes."""
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, fmt)
    return buffer.getvalue()


def sample_crops():
    """Centre crops of the photos of data/sample (uint8 RGB), of several sizes."""
    sizes = [(64, 64), (64, 48), (37, 64), (64, 64), (20, 30)]
    crops = []
    for path, (h, w) in zip(sorted(SAMPLE_DIR.glob("*.*g")), sizes):
        image = read_rgb(str(path))
        top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        crops.append(image[top:top + h, left:left + w])
    return crops


def saved_model_cli():
    """The saved_model_cli command as an argv prefix."""
    path = shutil.which("saved_model_cli")
    return [path] if path else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def run_quiet(argv, **kwargs):
    """subprocess.run with captured text output and TF's C++ logging silenced."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.update(kwargs.pop("env", {}))
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def generator():
    return lively_generator()


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    """Path of version 1 of an export with small tiles, a 100x100 pixel cap and warm-up requests."""
    config = serving.ServingConfig(tile_size=TILE, max_input_pixels=MAX_PIXELS)
    return serving.export(generator, str(tmp_path_factory.mktemp("export") / "srgan"),
                          config=config, warmup=True)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


# ----------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("preset, num_block, radius", [
    ("tensorlayer", 16, 36), ("tensorlayer", 1, 6), ("paper", 16, 40), ("paper", 1, 10)])
def test_receptive_radius(preset, num_block, radius):
    generator = Generator(preset=preset, num_feat=8, num_block=num_block)
    assert serving.receptive_radius(generator) == radius


@pytest.mark.parametrize("length, tile, margin", [
    (1, 24, 6), (24, 24, 6), (25, 24, 6), (37, 24, 6), (100, 24, 6), (100, 16, 0), (257, 256, 36)])
def test_tile_layout_covers_image_with_margins(length, tile, margin):
    core_start, core_end, tile_start, tile_length = (
        t.numpy() for t in serving._tile_layout(tf.constant(length), tile, margin))
    assert core_start[0] == 0 and core_end[-1] == length
    np.testing.assert_array_equal(core_start[1:], core_end[:-1])  # cores partition the image
    assert tile_length == min(tile, length)
    assert np.all(tile_start >= 0) and np.all(tile_start + tile_length <= length)
    for start, c0, c1 in zip(tile_start, core_start, core_end):
        assert start == 0 or c0 - start >= margin  # inner tile edges stay `margin` from the core
        assert start + tile_length == length or start + tile_length - c1 >= margin


@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
def test_tiled_output_equals_untiled(preset):
    generator = lively_generator(preset=preset)
    margin = serving.receptive_radius(generator)
    image = uint8_to_signed(serving.sample_image(45, 31))
    expected = generator(image[tf.newaxis], training=False)[0].numpy()
    upscale = tf.function(lambda x, tile: serving.upscale_tiled(generator, x, tile, margin),
                          reduce_retracing=True)
    for tile in (2 * margin + 5, 2 * margin + 13, 64):  # cores of 5 and 13 pixels; one tile
        got = upscale(image, tile).numpy()
        assert got.shape == (180, 124, 3)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"tile {tile}")


def test_config_validation_names_the_flag(generator):
    with pytest.raises(ValueError, match="--output_format must be one of png, jpeg, got 'webp'"):
        serving.ServingConfig(output_format="webp").validate()
    with pytest.raises(ValueError, match="--jpeg_quality must be in 1..100, got 0"):
        serving.ServingConfig(jpeg_quality=0).validate()
    with pytest.raises(ValueError, match="--max_input_pixels must be positive"):
        serving.ServingConfig(max_input_pixels=0).validate()
    with pytest.raises(ValueError,
                       match=r"--tile_size must be more than twice the tile overlap \(6\)"):
        serving.SuperResolutionModule(generator, serving.ServingConfig(tile_size=12))


# ----------------------------------------------------------------------------- the SavedModel

FRESH_PROCESS = textwrap.dedent("""
    import json, sys

    import numpy as np
    import tensorflow as tf

    try:
        import keras
        sys.exit("keras is importable: the test environment is not keras-free")
    except ImportError:
        pass
    model = tf.saved_model.load(sys.argv[1])
    inputs = np.load("inputs.npz")
    sr = model.signatures["serving_default"](images=tf.constant(inputs["images"]))
    np.save("sr_images.npy", sr["sr_images"].numpy())
    names = sorted(n for n in inputs.files if n.startswith("png"))
    data = tf.constant([inputs[n].tobytes() for n in names])
    encoded = model.signatures["upscale_image"](image_bytes=data)["sr_image_bytes"].numpy()
    for name, png in zip(names, encoded):
        open(f"sr_{name}.png", "wb").write(png)
    signatures = {k: sorted(f.structured_outputs) for k, f in model.signatures.items()}
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("srgan_tf", "keras"))
    print(json.dumps({"signatures": signatures, "forbidden_modules": loaded}))
""")


def site_packages_without(farm, excluded=("keras", "srgan")):
    """Makes `farm` a directory of symlinks to the installed packages, minus `excluded` ones.

    With `python -S` and PYTHONPATH=farm, a process sees TensorFlow and NumPy but neither Keras
    nor srgan_tf, as in a bare serving environment.
    """
    farm.mkdir()
    for entry in map(Path, sys.path):
        if entry.name not in ("site-packages", "dist-packages") or not entry.is_dir():
            continue
        for item in entry.iterdir():
            if not item.name.lower().startswith(excluded) and not (farm / item.name).exists():
                (farm / item.name).symlink_to(item)
    return farm


def test_fresh_process_matches_keras(generator, exported, tmp_path):
    """Loads the export in a fresh process that can import neither srgan_tf nor keras."""
    crops = sample_crops()
    images = np.stack([crops[0], crops[3]]).astype(np.float32) / 255.0  # two 64x64 crops
    pngs = {f"png{i}": np.frombuffer(encode(crop), np.uint8) for i, crop in enumerate(crops)}
    np.savez(tmp_path / "inputs.npz", images=images, **pngs)
    env = {"PYTHONPATH": str(site_packages_without(tmp_path / "site"))}
    result = run_quiet([sys.executable, "-S", "-c", FRESH_PROCESS, exported], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"signatures": {"serving_default": ["sr_images"],
                                     "upscale_image": ["sr_image_bytes"]},
                      "forbidden_modules": []}

    sr = np.load(tmp_path / "sr_images.npy")
    expected = keras_unit(generator, np.stack([crops[0], crops[3]]))
    assert sr.shape == (2, 256, 256, 3) and sr.dtype == np.float32
    assert np.abs(sr - expected).max() < 1e-4
    assert sr.min() >= 0.0 and sr.max() <= 1.0
    for i, crop in enumerate(crops):
        with Image.open(tmp_path / f"sr_png{i}.png") as png:
            assert png.format == "PNG" and png.mode == "RGB"
            decoded = np.asarray(png, np.int32)
        assert decoded.shape == (4 * crop.shape[0], 4 * crop.shape[1], 3)
        rounded = np.round(keras_unit(generator, crop) * 255.0)
        assert np.abs(decoded - rounded).max() <= 1, f"sample crop {i}"


def test_saved_model_cli_show_lists_both_signatures(exported):
    result = run_quiet(saved_model_cli() + ["show", "--dir", exported, "--all"])
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    float_part = text[text.index("signature_def['serving_default']"):]
    bytes_part = text[text.index("signature_def['upscale_image']"):]
    for part, expected in [
        (float_part, ["inputs['images'] tensor_info:", "dtype: DT_FLOAT", "shape: (-1, -1, -1, 3)",
                      "outputs['sr_images'] tensor_info:"]),
        (bytes_part, ["inputs['image_bytes'] tensor_info:", "dtype: DT_STRING", "shape: (-1)",
                      "outputs['sr_image_bytes'] tensor_info:"]),
    ]:
        section = part[:part.index("Method name is")]
        for line in expected:
            assert line in section, f"{line!r} missing from:\n{section}"


def test_saved_model_cli_run_float_signature(generator, exported, tmp_path):
    image_u8 = serving.sample_image(12, 10, seed=3)
    np.save(tmp_path / "images.npy", image_u8[np.newaxis].astype(np.float32) / 255.0)
    result = run_quiet(saved_model_cli() + [
        "run", "--dir", exported, "--tag_set", "serve", "--signature_def", "serving_default",
        "--inputs", f"images={tmp_path / 'images.npy'}", "--outdir", str(tmp_path / "out")])
    assert result.returncode == 0, result.stderr[-2000:]
    sr = np.load(tmp_path / "out" / "sr_images.npy")
    assert sr.shape == (1, 48, 40, 3)
    assert np.abs(sr[0] - keras_unit(generator, image_u8)).max() < 1e-4


def test_directory_layout(exported):
    assert os.path.basename(exported) == "1"
    names = set(os.listdir(exported))
    assert {"saved_model.pb", "variables", "assets.extra"} <= names
    assert not [n for n in os.listdir(os.path.dirname(exported)) if n.startswith(".tmp")]


# ----------------------------------------------------------------------------- requests


def test_image_modes_are_converted_to_rgb(generator, loaded):
    rgb = serving.sample_image(18, 22, seed=1)
    gray = rgb[:, :, 1]
    rgba = np.dstack([rgb, np.full(gray.shape, 77, np.uint8)])
    gray_alpha = Image.merge("LA", [Image.fromarray(gray), Image.fromarray(rgba[:, :, 3])])
    gray16 = gray.astype(np.uint16) * 257  # PIL mode I;16
    cases = {  # name: (encoded bytes, the RGB image the model should see)
        "rgb png": (encode(rgb), rgb),
        "gray png": (encode(gray), np.repeat(gray[..., None], 3, 2)),
        "gray+alpha png": (encode(gray_alpha), np.repeat(gray[..., None], 3, 2)),
        "rgba png": (encode(rgba), rgb),
        "16-bit gray png": (encode(gray16), np.repeat(gray[..., None], 3, 2)),
        "bmp": (encode(rgb, "BMP"), rgb),
        "gif": (encode(gray, "GIF"), np.repeat(gray[..., None], 3, 2)),
        "jpeg": (encode(rgb, "JPEG"), None),
    }
    upscale = loaded.signatures["upscale_image"]
    for name, (data, seen) in cases.items():
        png = upscale(image_bytes=tf.constant([data]))["sr_image_bytes"][0].numpy()
        with Image.open(io.BytesIO(png)) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (88, 72)), name
            decoded = np.asarray(image, np.int32)
        if seen is not None:
            rounded = np.round(keras_unit(generator, seen) * 255.0)
            assert np.abs(decoded - rounded).max() <= 1, name


def test_palette_and_animated_gif_requests(generator, loaded):
    rgb = serving.sample_image(18, 22, seed=5)
    palette = Image.fromarray(rgb).quantize(64)  # an RGB palette of 64 colours, mode P
    palette_rgb = np.asarray(palette.convert("RGB"))
    frames = [Image.fromarray(serving.sample_image(18, 22, seed=s)).quantize(64) for s in (6, 7)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = np.asarray(frames[0].convert("RGB"))
    with Image.open(io.BytesIO(buffer.getvalue())) as gif:
        assert gif.n_frames == 2
    upscale = loaded.signatures["upscale_image"]
    for name, data, seen in [("palette png", encode(palette), palette_rgb),
                             ("palette gif", encode(palette, "GIF"), palette_rgb),
                             ("animated gif", buffer.getvalue(), first)]:
        png = upscale(image_bytes=tf.constant([data]))["sr_image_bytes"][0].numpy()
        with Image.open(io.BytesIO(png)) as image:
            assert (image.mode, image.size) == ("RGB", (88, 72)), name
            decoded = np.asarray(image, np.int32)
        rounded = np.round(keras_unit(generator, seen) * 255.0)
        assert np.abs(decoded - rounded).max() <= 1, name  # the first frame only


def test_float_signature_batch_and_empty_batch(generator, loaded):
    images = np.stack([serving.sample_image(9, 13, seed=s) for s in range(3)])
    serve = loaded.signatures["serving_default"]
    sr = serve(images=tf.constant(images / 255.0, tf.float32))["sr_images"].numpy()
    assert np.abs(sr - keras_unit(generator, images)).max() < 1e-4
    assert serve(images=tf.zeros([0, 5, 7, 3]))["sr_images"].shape == (0, 20, 28, 3)
    assert loaded.signatures["upscale_image"](
        image_bytes=tf.zeros([0], tf.string))["sr_image_bytes"].shape == (0,)


def _header_bomb():
    """A valid PNG signature and IHDR claiming 100000 x 100000 pixels, followed by junk."""
    png = encode(serving.sample_image(8, 8))
    return png[:16] + (100000).to_bytes(4, "big") * 2 + png[24:]


@pytest.mark.parametrize("data, message", [
    (b"definitely not an image", r"image_bytes\[1\] is not a PNG, JPEG, BMP or GIF image"),
    (b"", r"image_bytes\[1\] is empty"),
    (encode(serving.sample_image(101, 100)),
     r"image_bytes\[1\] is 100 x 101 = 10100 pixels, above the limit of 10000 input pixels"),
    (_header_bomb(), r"image_bytes\[1\] is 100000 x 100000 = 10000000000 pixels, above the limit"),
    (encode(serving.sample_image(30, 30))[:100], r"Invalid PNG data"),
    (b"\xff\xd8\xff\xe0 truncated jpeg", r"Invalid JPEG data"),
])
def test_bad_image_bytes_give_invalid_argument(loaded, data, message):
    good = encode(serving.sample_image(8, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["upscale_image"](image_bytes=tf.constant([good, data]))


BAD_SHAPE = r"images must be float32 \[N, H, W, 3\] in \[0, 1\], got shape "
OUT_OF_RANGE = r"images must be float32 in \[0, 1\] \(RGB divided by 255\), got values in \["


@pytest.mark.parametrize("images, message", [
    (tf.zeros([1, 101, 100, 3]), r"each image of images is 100 x 101 = 10100 pixels, above the "
                                 r"limit of 10000 input pixels \(--max_input_pixels of the "
                                 r"export\)"),
    (tf.fill([1, 4, 4, 3], 255.0), OUT_OF_RANGE + r"255\.0+, 255\.0+\] or NaN"),
    (tf.fill([1, 4, 4, 3], -0.5), OUT_OF_RANGE),
    (tf.constant([[[[0.5, float("nan"), 0.5]]]]), OUT_OF_RANGE),
    (tf.zeros([4, 4, 3]), BAD_SHAPE + r"\[4, 4, 3\]"),
    (tf.zeros([1, 4, 4, 4]), BAD_SHAPE + r"\[1, 4, 4, 4\]"),
    (tf.zeros([1, 0, 4, 3]), r"images must have height and width >= 1"),
    (tf.zeros([1, 4, 4, 3], tf.int32), r"expected to be a float tensor but is a int32 tensor"),
])
def test_bad_float_requests_give_invalid_argument(loaded, images, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](images=images)


def test_jpeg_output(generator, tmp_path):
    config = serving.ServingConfig(tile_size=TILE, output_format="jpeg", jpeg_quality=90)
    path = serving.export(generator, str(tmp_path), config=config)
    image_u8 = serving.sample_image(16, 20, seed=2)
    data = tf.saved_model.load(path).signatures["upscale_image"](
        image_bytes=tf.constant([encode(image_u8)]))["sr_image_bytes"][0].numpy()
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (80, 64))
    expected_u8 = np.round(keras_unit(generator, image_u8) * 255.0).astype(np.uint8)
    expected = tf.io.encode_jpeg(expected_u8, format="rgb", quality=90)  # same encoder and quality
    diff = np.abs(tf.io.decode_jpeg(data).numpy().astype(np.int32)
                  - tf.io.decode_jpeg(expected).numpy().astype(np.int32))
    assert diff.mean() < 0.5


# ----------------------------------------------------------------------------- versions and files


def _tree_digest(path):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            digest.update(name.encode())
            digest.update(Path(root, name).read_bytes())
    return digest.hexdigest()


def test_versions_are_added_never_overwritten(generator, tmp_path, monkeypatch):
    base = str(tmp_path / "srgan")
    first = serving.export(generator, base, check=False)
    before = _tree_digest(first)
    second = serving.export(lively_generator(seed=1), base, check=False)
    assert (os.path.basename(first), os.path.basename(second)) == ("1", "2")
    assert _tree_digest(first) == before
    with pytest.raises(ValueError, match=r"srgan/1 already exists: versions are never overwritten "
                                         r"\(omit --version to write version 3\)"):
        serving.export(generator, base, version=1)
    assert os.path.basename(serving.export(generator, base, version=7, check=False)) == "7"
    assert serving.next_version(base) == 8

    def broken_check(*args):
        raise ValueError("check failed")

    monkeypatch.setattr(serving, "check_saved_model", broken_check)
    with pytest.raises(ValueError, match="check failed"):
        serving.export(generator, base)
    assert sorted(os.listdir(base)) == ["1", "2", "7"]  # no version 8, no temporary directory


def test_check_saved_model_refuses_the_export_of_another_generator(exported, monkeypatch):
    """The fixture's export passed this check against its own generator; another one fails."""
    config = serving.ServingConfig(tile_size=TILE, max_input_pixels=MAX_PIXELS)
    other = lively_generator(seed=1)
    outputs, run = {}, serving.run_like_tf_serving

    def run_once(path, requests):  # the same requests both times: load the export once
        if path not in outputs:
            outputs[path] = run(path, requests)
        return outputs[path]

    monkeypatch.setattr(serving, "run_like_tf_serving", run_once)
    with pytest.raises(ValueError, match=r"/1: serving_default differs from the Keras generator "
                                         r"by [0-9.]+e-0[0-9]"):
        serving.check_saved_model(exported, other, config)
    # The encoded signature is checked on its own too.
    monkeypatch.setattr(serving, "CHECK_TOLERANCE", float("inf"))
    with pytest.raises(ValueError, match=r"/1: upscale_image differs from the Keras generator "
                                         r"by [0-9]+/255"):
        serving.check_saved_model(exported, other, config)


def test_warmup_requests_replay(exported, loaded):
    records = list(tf.data.TFRecordDataset(os.path.join(exported, serving.WARMUP_FILE)))
    assert len(records) == 2
    apis = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2",
                               reason="tensorflow-serving-api (extra `serving`) not installed")
    for record in records:
        log = apis.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "srgan"
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        # What TF Serving does with each record when it loads the model:
        outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
        assert list(outputs) in (["sr_images"], ["sr_image_bytes"])


def test_hand_built_warmup_proto_equals_serving_api(monkeypatch):
    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2",
                        reason="tensorflow-serving-api (extra `serving`) not installed")
    inputs = {"image_bytes": np.array([b"\x89PNG" + bytes(range(200))], object)}
    with_api = serving.predict_log_bytes("srgan", "upscale_image", inputs)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # import now fails
    assert serving.predict_log_bytes("srgan", "upscale_image", inputs) == with_api


def test_keras_round_trip(generator, tmp_path):
    path = serving.export(generator, str(tmp_path), formats=("savedmodel", "keras"))
    keras_path = os.path.join(path, serving.KERAS_FILE)
    x = uint8_to_signed(serving.sample_image(10, 14)[np.newaxis])
    for reloaded in (keras.models.load_model(keras_path, compile=False),
                     loading.load_generator(keras_path)):
        np.testing.assert_allclose(reloaded(x, training=False), generator(x, training=False),
                                   atol=1e-6)


@pytest.mark.parametrize("input_size", [None, 16])
def test_tflite_round_trip(generator, input_size):
    content = serving.tflite_model(generator, input_size)
    details = serving.tflite_interpreter(content).get_input_details()[0]
    expected = [1, input_size or -1, input_size or -1, 3]
    assert details["shape_signature"].tolist() == expected
    assert serving.check_tflite(content, generator, input_size) < serving.TFLITE_TOLERANCE
    if input_size is None:  # dynamic: any other size after resize_tensor_input
        interpreter = serving.tflite_interpreter(content)
        interpreter.resize_tensor_input(details["index"], [1, 9, 23, 3])
        interpreter.allocate_tensors()
        image_u8 = serving.sample_image(9, 23, seed=4)
        interpreter.set_tensor(details["index"], image_u8[np.newaxis].astype(np.float32) / 255.0)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        assert np.abs(got - keras_unit(generator, image_u8)).max() < serving.TFLITE_TOLERANCE


def test_export_writes_tflite_file(generator, tmp_path):
    path = serving.export(generator, str(tmp_path), formats=("tflite",), tflite_input_size=12)
    content = Path(path, serving.TFLITE_FILE).read_bytes()
    assert serving.check_tflite(content, generator, 12) < serving.TFLITE_TOLERANCE
