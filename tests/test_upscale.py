"""Tests of srgan_tf.upscale and its CLI: tiling, alpha, image modes, streaming PNG, bad inputs."""

import io
import os
import struct
import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFile

from srgan_tf import image_files, upscale
from srgan_tf.cli import common
from srgan_tf.imaging import bicubic_upsample, signed_to_uint8, uint8_to_signed
from srgan_tf.serving import receptive_radius
from tests.conftest import REPO, lively_generator, write_images


@pytest.fixture(scope="module")
def generator():
    return lively_generator()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, generator):
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    generator.save(path)
    return path


def photo(height, width, seed=0):
    """uint8 [height, width, 3]: smooth colour plus texture, like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [height // 8 + 2, width // 8 + 2, 3]).astype(np.float32)
    smooth = tf.image.resize(coarse, [height, width], method="bicubic").numpy()
    return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)


def run_cli(*args):
    """Runs `python -m srgan_tf.upscale ARGS` from the repo; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "srgan_tf.upscale", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


# ---------------------------------------------------------------------------------------------
# Tiling.

@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
@pytest.mark.parametrize("height, width, tile", [(37, 53, 16), (64, 64, 20), (128, 128, 40)])
def test_tiled_equals_untiled(preset, height, width, tile):
    generator = lively_generator(preset=preset)
    resolver = upscale.keras_resolver(generator)
    image = photo(height, width)
    overlap = receptive_radius(generator)
    if tile <= 2 * overlap:
        tile = 2 * overlap + 4
    whole = upscale.upscale_array(resolver, image, tile=0)
    tiles = []
    tiled = upscale.upscale_array(resolver, image, tile=tile, overlap=overlap,
                                  progress=lambda: tiles.append(1))
    assert whole.shape == tiled.shape == (4 * height, 4 * width, 3)
    assert len(tiles) == upscale.count_tiles(height, width, tile, overlap) > 1
    diff = np.abs(whole.astype(int) - tiled)
    assert diff.max() <= 1 and diff.mean() < 0.5, (diff.max(), diff.mean())
    assert whole.std() > 20  # the model's output isn't flat: the comparison means something


def test_tiled_equals_untiled_on_512_by_512(generator):
    resolver = upscale.keras_resolver(generator)
    image = photo(512, 512, seed=3)
    whole = upscale.upscale_array(resolver, image, tile=0)
    tiled = upscale.upscale_array(resolver, image, tile=upscale.DEFAULT_TILE,
                                  overlap=receptive_radius(generator))
    diff = np.abs(whole.astype(int) - tiled)
    assert diff.max() <= 1 and diff.mean() < 0.5


def test_too_little_overlap_leaves_seams(generator):
    resolver = upscale.keras_resolver(generator)
    image = photo(64, 64)
    whole = upscale.upscale_array(resolver, image, tile=0)
    seamy = upscale.upscale_array(resolver, image, tile=16, overlap=0)
    assert np.abs(whole.astype(int) - seamy).max() > 1  # the test above isn't vacuous


def test_measured_radius_within_the_architectural_one(generator):
    measured = upscale.measured_radius(upscale.keras_resolver(generator).signed_fn)
    assert receptive_radius(generator) - 2 <= measured <= receptive_radius(generator)
    assert upscale.measured_radius(upscale.bicubic_resolver().signed_fn) == 2


def test_alpha_is_bicubic_and_stitches_exactly():
    rng = np.random.default_rng(4)
    image = photo(37, 53)
    alpha = rng.integers(0, 256, [37, 53], dtype=np.uint8)
    bicubic = upscale.bicubic_resolver()
    out = upscale.upscale_array(bicubic, image, alpha, tile=12, overlap=3)
    expected = signed_to_uint8(bicubic_upsample(uint8_to_signed(alpha[..., None]))).numpy()
    assert out.shape == (148, 212, 4)
    np.testing.assert_array_equal(out[..., 3:], expected)


def test_bad_tiling_and_outputs_are_rejected(generator):
    resolver = upscale.keras_resolver(generator)
    with pytest.raises(ValueError,
                       match=r"--tile must be more than twice the tile overlap \(6\), got 12"):
        upscale.upscale_array(resolver, photo(20, 20), tile=12, overlap=6)
    with pytest.raises(ValueError, match="--tile_overlap must be >= 0, got -1"):
        upscale.upscale_array(resolver, photo(20, 20), tile=0, overlap=-1)
    with pytest.raises(ValueError, match=r"expected uint8 \[H, W, 3\], got uint8 \(20, 20, 4\)"):
        upscale.upscale_array(resolver, np.zeros([20, 20, 4], np.uint8), tile=0)
    with pytest.raises(ValueError, match=r"returned \(20, 20, 3\) for a 20 x 20 input"):
        upscale.upscale_array(lambda lr: lr, photo(20, 20), tile=0)


# ---------------------------------------------------------------------------------------------
# Model sources.

def test_saved_model_resolver_matches_keras(tmp_path, generator):
    module = tf.Module()
    module.variables_ = list(generator.variables)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def serve(images):
        sr = generator(images * 2.0 - 1.0, training=False)
        return {"sr_images": tf.clip_by_value((sr + 1.0) / 2.0, 0.0, 1.0)}

    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": serve})
    image = photo(21, 30)
    from_saved, overlap = upscale.load_resolver(saved_model=str(tmp_path / "sm"))
    assert overlap >= upscale.DEFAULT_OVERLAP
    from_model_flag, _ = upscale.load_resolver(model=str(tmp_path / "sm"))
    expected = upscale.keras_resolver(generator)(image)
    for resolver in (from_saved, from_model_flag):
        assert np.abs(resolver(image).astype(int) - expected).max() <= 1


def test_load_resolver_from_keras_file(model_file, generator):
    resolver, overlap = upscale.load_resolver(model=str(model_file))
    assert overlap == receptive_radius(generator) == 6
    image = photo(16, 16)
    np.testing.assert_array_equal(resolver(image), upscale.keras_resolver(generator)(image))


def test_load_resolver_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one of --checkpoint_dir, --model or --saved_model"
                                         ", got none"):
        upscale.load_resolver()
    with pytest.raises(FileNotFoundError, match="--model .*nope.keras does not exist"):
        upscale.load_resolver(model=str(tmp_path / "nope.keras"))
    with pytest.raises(ValueError, match="--saved_model .* is not a SavedModel directory"):
        upscale.load_resolver(saved_model=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--checkpoint_dir: no checkpoint under"):
        upscale.load_resolver(checkpoint_dir=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Files.

def write(path, image, **save_args):
    image.save(path, **save_args)
    return path


def test_read_image_modes(tmp_path):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, [10, 12, 3], dtype=np.uint8)
    wide = rng.integers(0, 65536, [10, 12]).astype(np.uint16)
    cmyk = rng.integers(0, 256, [10, 12, 4], dtype=np.uint8)
    palette = Image.fromarray(rgb).convert("P")
    palette.info["transparency"] = 0
    lut = np.array(palette.getpalette(), np.uint8).reshape(-1, 3)
    bilevel = Image.fromarray(rgb[..., 0]).convert("1")  # dithered
    ink = 255.0 - cmyk[..., 3:].astype(np.float64)  # PIL: R = (255 - C) (255 - K) / 255
    cases = {  # name: (image, has alpha, is gray, the RGB pixels read_image must return)
        "rgba.png": (Image.fromarray(np.dstack([rgb, rgb[..., 0]]), "RGBA"), True, False, rgb),
        "la.png": (Image.fromarray(rgb[..., 0]).convert("LA"), True, True,
                   np.repeat(rgb[..., :1], 3, 2)),
        "gray.png": (Image.fromarray(rgb[..., 0]), False, True, np.repeat(rgb[..., :1], 3, 2)),
        "gray16.png": (Image.fromarray(wide), False, True,
                       np.repeat(np.round(wide / 257.0)[..., None], 3, 2)),
        "palette.png": (palette, True, False, lut[np.asarray(palette)]),
        "cmyk.tif": (Image.fromarray(cmyk, "CMYK"), False, False,
                     (255.0 - cmyk[..., :3]) * ink / 255.0),
        "cmyk.jpg": (Image.fromarray(rgb).convert("CMYK"), False, False, None),
        "bilevel.bmp": (bilevel, False, True,
                        np.repeat(np.asarray(bilevel)[..., None], 3, 2) * 255),
    }
    for name, (image, has_alpha, is_gray, expected) in cases.items():
        extra = {"transparency": 0} if name == "palette.png" else {}
        path = write(tmp_path / name, image, **extra)
        pixels, alpha, gray = upscale.read_image(path)
        assert pixels.shape == (10, 12, 3) and pixels.dtype == np.uint8, name
        assert (alpha is not None) == has_alpha and gray == is_gray, name
        if expected is not None:
            # Exact up to the rounding of the conversion.
            assert np.abs(pixels.astype(np.float64) - expected).max() < 1, name
    # A CMYK JPEG is lossy: close to the RGB it was made from, not to its inverse.
    assert np.abs(upscale.read_image(tmp_path / "cmyk.jpg")[0].astype(int) - rgb).mean() < 16
    np.testing.assert_array_equal(upscale.read_image(tmp_path / "rgba.png")[1], rgb[..., 0])
    palette_alpha = np.where(np.asarray(palette) == 0, 0, 255)
    np.testing.assert_array_equal(upscale.read_image(tmp_path / "palette.png")[1], palette_alpha)


# EXIF orientation -> the numpy operation that displays the stored pixels upright.
ORIENTATIONS = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2),
                4: lambda a: a[::-1], 5: lambda a: np.rot90(a[:, ::-1], 1),
                6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a[:, ::-1], -1),
                8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_read_image_honours_exif_orientation(tmp_path, orientation):
    stored = np.dstack([photo(10, 20), np.arange(200, dtype=np.uint8).reshape(10, 20)])
    image = Image.fromarray(stored, "RGBA")
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "rotated.png", exif=exif.tobytes())  # lossless: compare exactly
    rgb, alpha, _ = upscale.read_image(tmp_path / "rotated.png")
    upright = ORIENTATIONS[orientation](stored)
    np.testing.assert_array_equal(rgb, upright[..., :3])
    np.testing.assert_array_equal(alpha, upright[..., 3])  # alpha turns with the colours


@pytest.mark.parametrize("orientation", [6, 8])
def test_read_image_honours_jpeg_exif_orientation(tmp_path, orientation):
    image = Image.fromarray(photo(16, 24))
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    with Image.open(tmp_path / "rotated.jpg") as stored:  # the decoded pixels, as stored
        upright = ORIENTATIONS[orientation](np.asarray(stored.convert("RGB")))
    np.testing.assert_array_equal(upscale.read_image(tmp_path / "rotated.jpg")[0], upright)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_stream_writer_round_trips(tmp_path, channels):
    rng = np.random.default_rng(channels)
    image = photo(70, 33, seed=channels)
    pixels = np.dstack([image, rng.integers(0, 256, [70, 33], dtype=np.uint8)])[..., :channels]
    with upscale.PngStreamWriter(tmp_path / "a.png", 33, 70, channels) as writer:
        for start, stop in [(0, 1), (1, 30), (30, 70)]:
            writer.write(pixels[start:stop])
    with Image.open(tmp_path / "a.png") as decoded:
        assert decoded.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        np.testing.assert_array_equal(np.asarray(decoded).reshape(pixels.shape), pixels)


def test_png_stream_writer_checks_rows(tmp_path):
    writer = upscale.PngStreamWriter(tmp_path / "a.png", 4, 3, 3)
    with pytest.raises(ValueError, match="PNG is 3 rows high, got 4"):
        writer.write(np.zeros([4, 4, 3], np.uint8))
    writer.write(np.zeros([2, 4, 3], np.uint8))
    with pytest.raises(ValueError, match="PNG is 3 rows high, only 2 written"):
        writer.close()


@pytest.mark.parametrize("image_format", ["png", "jpeg", "webp", "tiff", "bmp"])
def test_upscale_file_formats_and_modes(tmp_path, image_format):
    bicubic = upscale.bicubic_resolver()
    rgba = Image.fromarray(np.dstack([photo(9, 11), np.full([9, 11], 200, np.uint8)]), "RGBA")
    gray = Image.fromarray(photo(9, 11)[..., 0])
    for name, image, mode in [("rgba.png", rgba, "RGBA"), ("gray.png", gray, "L")]:
        path = write(tmp_path / name, image)
        out = upscale.output_path(path, str(tmp_path / "out"), image_format)
        os.makedirs(tmp_path / "out", exist_ok=True)
        info = upscale.upscale_file(bicubic, path, out, tile=8, overlap=2,
                                    image_format=image_format)
        # JPEG and BMP keep no alpha, WebP no grayscale: the mode returned is the one written.
        expected = {("jpeg", "RGBA"): "RGB", ("bmp", "RGBA"): "RGB",
                    ("webp", "L"): "RGB"}.get((image_format, mode), mode)
        assert info["input_size"] == (11, 9) and info["output_size"] == (44, 36)
        assert info["mode"] == expected
        with Image.open(out) as result:
            assert result.size == (44, 36)
            assert result.mode == expected
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        f"{stem}_x4{upscale.FORMATS[image_format][1]}" for stem in ("gray", "rgba"))


def test_upscale_file_output_matches_untiled_array(tmp_path, generator):
    resolver = upscale.keras_resolver(generator)
    image = photo(37, 53)
    write(tmp_path / "odd.png", Image.fromarray(image))
    upscale.upscale_file(resolver, tmp_path / "odd.png", tmp_path / "odd_x4.png", tile=16,
                         overlap=6)
    with Image.open(tmp_path / "odd_x4.png") as result:
        written = np.asarray(result)
    assert np.abs(written.astype(int) - upscale.upscale_array(resolver, image, tile=0)).max() <= 1


def test_upscale_file_refuses_bad_inputs_and_never_overwrites_one(tmp_path):
    bicubic = upscale.bicubic_resolver()
    source = write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    before = source.read_bytes()
    with pytest.raises(ValueError, match="refusing to overwrite input .*a.png"):
        upscale.upscale_file(bicubic, source, source)
    assert source.read_bytes() == before
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ValueError, match="cannot decode .*bad.jpg"):
        upscale.upscale_file(bicubic, tmp_path / "bad.jpg", tmp_path / "bad_x4.png")
    with pytest.raises(ValueError,
                       match="--ext must be one of png, jpeg, webp, tiff, bmp, got 'gif'"):
        upscale.upscale_file(bicubic, source, tmp_path / "x.gif", image_format="gif")
    assert sorted(os.listdir(tmp_path)) == ["a.png", "bad.jpg"]  # no partial or temporary file


class _Failing(keras.layers.Layer):
    """A layer whose op fails when it runs (a reshape to the wrong size)."""

    def call(self, x):
        return tf.reshape(x, [7])


def test_a_model_that_fails_gives_the_ops_own_error_line(tmp_path):
    # Called eagerly, Keras wraps the op's error in "Exception encountered when calling ...";
    # the error line gives the op's message instead, and no output is written.
    source = write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    layer = _Failing()
    with pytest.raises(ValueError) as raised:
        upscale.upscale_file(lambda lr: layer(tf.constant(lr)), source, tmp_path / "a_x4.png")
    message = str(raised.value)
    assert message.startswith(f"the model failed on {source}: Input to reshape is a tensor with")
    assert "\n" not in message and "Exception encountered" not in message
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_a_failed_write_leaves_no_output_and_no_temporary(tmp_path, monkeypatch):
    source = write(tmp_path / "a.png", Image.fromarray(photo(40, 8)))
    write_band = upscale.PngStreamWriter.write

    def full_after_one_band(self, band):
        if self.rows_written:
            raise OSError(28, "No space left on device")
        write_band(self, band)

    monkeypatch.setattr(upscale.PngStreamWriter, "write", full_after_one_band)
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError, match="No space left on device"):
        upscale.upscale_file(upscale.bicubic_resolver(), source, tmp_path / "out" / "a_x4.png",
                             tile=16, overlap=2)
    assert os.listdir(tmp_path / "out") == []  # a row band was written, then removed


def test_list_inputs(tmp_path):
    write_images(tmp_path / "d", [(8, 8), (8, 8)])
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    paths, problems = upscale.list_inputs([str(tmp_path / "d"), str(tmp_path / "d" / "img00.png"),
                                           str(tmp_path / "d" / "*.png"), str(tmp_path / "none*"),
                                           str(tmp_path / "missing.png")])
    assert [os.path.basename(p) for p in paths] == ["img00.png", "img01.png"]
    assert problems == [f"{tmp_path}/none*: no file matches",
                        f"{tmp_path}/missing.png: no such file or folder"]


# ---------------------------------------------------------------------------------------------
# CLI.

def test_cli_mixed_folder(tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    rgb = photo(13, 17)
    write(folder / "a.png", Image.fromarray(rgb))
    write(folder / "b.jpg", Image.fromarray(rgb), quality=90)
    write(folder / "c.bmp", Image.fromarray(rgb[..., 0]))
    write(folder / "d.webp", Image.fromarray(np.dstack([rgb, rgb[..., 1]]), "RGBA"))
    write(folder / "e.tif", Image.fromarray(rgb))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    (folder / "f.png").write_bytes(buffer.getvalue()[:60])  # truncated
    proc = run_cli(folder, "--output_dir", tmp_path / "out", "--model", model_file, "--tile", "16")
    assert proc.returncode == 2, proc.stderr
    assert "cannot decode" in proc.stderr and "f.png" in proc.stderr
    assert "upscaled 5 of 6 inputs" in proc.stdout
    # --ext auto: JPEG stays JPEG, WebP stays WebP, the lossless formats give PNG.
    outputs = sorted(os.listdir(tmp_path / "out"))
    assert outputs == ["a_x4.png", "b_x4.jpg", "c_x4.png", "d_x4.webp", "e_x4.png"]
    for name, mode in zip(outputs, ["RGB", "RGB", "L", "RGBA", "RGB"]):
        with Image.open(tmp_path / "out" / name) as result:
            assert result.size == (68, 52) and result.mode == mode, name
    assert f"wrote {tmp_path / 'out' / 'b_x4.jpg'} (17 x 13 -> 68 x 52 RGB)" in proc.stderr
    # Stdout is a pipe: plain progress lines, no terminal control codes.
    assert "tiles (100%)" in proc.stdout
    assert not {"\x1b", "\r", "\b"} & set(proc.stdout + proc.stderr)


def test_cli_never_overwrites_an_input(tmp_path, model_file):
    a = write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    a_x4 = write(tmp_path / "a_x4.png", Image.fromarray(photo(8, 8, seed=1)))
    before = a_x4.read_bytes()
    proc = run_cli(a, a_x4, "--output_dir", tmp_path, "--model", model_file)
    assert proc.returncode == 2
    assert "its output" in proc.stderr and "is one of the inputs" in proc.stderr
    assert a_x4.read_bytes() == before
    assert (tmp_path / "a_x4_x4.png").exists()


def test_cli_usage_errors(tmp_path, model_file):
    image = write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    proc = run_cli(image, "--output_dir", tmp_path / "out", "--model", model_file, "--tile", "12")
    assert proc.returncode == 2
    assert "--tile must be more than twice the tile overlap (6), got 12" in proc.stderr
    proc = run_cli("--output_dir", tmp_path / "out", "--model", model_file)
    assert proc.returncode == 2
    assert "give at least one input image, folder or glob pattern" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_cli_precision(tmp_path, model_file, precision):
    write(tmp_path / "a.png", Image.fromarray(photo(12, 10)))
    proc = run_cli(tmp_path / "a.png", "--output_dir", tmp_path / "out", "--model", model_file,
                   "--precision", precision)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out" / "a_x4.png") as result:
        assert result.size == (40, 48)


def test_cli_unknown_precision_is_a_usage_error(tmp_path, model_file):
    proc = run_cli(tmp_path / "a.png", "--output_dir", tmp_path / "out", "--model", model_file,
                   "--precision", "fp8")
    assert proc.returncode == 2 and "--precision" in proc.stderr and "fp8" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Leaving a run unattended: existing outputs, bombs, own outputs, names, metadata, speed.

def test_upscale_file_never_replaces_an_output_without_overwrite(tmp_path):
    bicubic = upscale.bicubic_resolver()
    source = write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    out = tmp_path / "a_x4.png"
    out.write_bytes(b"earlier result")
    with pytest.raises(FileExistsError, match="a_x4.png exists"):
        upscale.upscale_file(bicubic, source, out)
    assert out.read_bytes() == b"earlier result"
    upscale.upscale_file(bicubic, source, out, overwrite=True)
    with Image.open(out) as result:
        assert result.size == (32, 32)


def test_cli_skips_existing_outputs_unless_overwrite(tmp_path, model_file):
    write(tmp_path / "a.png", Image.fromarray(photo(8, 8)))
    out = tmp_path / "out" / "a_x4.png"
    out.parent.mkdir()
    out.write_bytes(b"earlier result")
    proc = run_cli(tmp_path / "a.png", "--output_dir", out.parent, "--model", model_file)
    assert proc.returncode == 0, proc.stderr
    assert f"skipped, {out} exists (--overwrite replaces it)" in proc.stderr
    assert "upscaled 0 of 1 inputs" in proc.stdout and "1 skipped" in proc.stdout
    assert out.read_bytes() == b"earlier result"
    proc = run_cli(tmp_path / "a.png", "--output_dir", out.parent, "--model", model_file,
                   "--overwrite")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as result:
        assert result.size == (32, 32)


def _png_header(width, height):
    """A PNG signature and valid IHDR claiming `width` x `height` RGB pixels, then a short IDAT."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    return b"".join([b"\x89PNG\r\n\x1a\n"] + [
        struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        for chunk in (ihdr, idat)])


def test_header_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    width, height = 6000, 5000  # 30 megapixels: above our default, below PIL's own limit
    assert upscale.DEFAULT_MAX_INPUT_PIXELS < width * height < Image.MAX_IMAGE_PIXELS
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(width, height))

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels were decoded")
    Image.init()  # loads PIL's plugins (some build images) before decoding is forbidden
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    message = r"bomb.png is 6000 x 5000 = 30,000,000 pixels, above --max_input_pixels 16,000,000"
    with pytest.raises(ValueError, match=message):
        upscale.read_image(bomb, upscale.DEFAULT_MAX_INPUT_PIXELS)
    with pytest.raises(ValueError, match=message):
        upscale.upscale_file(upscale.bicubic_resolver(), bomb, tmp_path / "bomb_x4.png")
    monkeypatch.undo()
    proc = run_cli(bomb, "--output_dir", tmp_path / "out")
    assert proc.returncode == 2
    assert "6000 x 5000 = 30,000,000 pixels, above --max_input_pixels" in proc.stderr
    assert "truncated" not in proc.stderr and not (tmp_path / "out").exists()


def test_list_inputs_leaves_out_this_tools_outputs(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    write(folder / "photo.png", Image.fromarray(photo(8, 8)))
    write(folder / "holiday_x4.jpg", Image.fromarray(photo(8, 8)))  # the user's own, unmarked
    upscale.upscale_file(upscale.bicubic_resolver(), folder / "photo.png", folder / "photo_x4.png")
    upscale.upscale_file(upscale.bicubic_resolver(), folder / "photo.png", folder / "photo_up.jpg",
                         image_format="jpeg")
    paths, problems = upscale.list_inputs([str(folder)])
    assert [os.path.basename(p) for p in paths] == ["holiday_x4.jpg", "photo.png", "photo_up.jpg"]
    paths, _ = upscale.list_inputs([str(folder / "*")], suffix="_up")
    assert [os.path.basename(p) for p in paths] == ["holiday_x4.jpg", "photo.png", "photo_x4.png"]
    # Named explicitly, an output is an input.
    paths, _ = upscale.list_inputs([str(folder / "photo_x4.png")])
    assert [os.path.basename(p) for p in paths] == ["photo_x4.png"] and not problems


def test_output_names_follow_suffix_and_ext():
    assert upscale.output_path("in/photo.JPG", "out", image_files.output_format("in/photo.JPG"),
                               "_big") == os.path.join("out", "photo_big.jpg")
    assert image_files.output_format("a.webp") == "webp"
    assert image_files.output_format("a.tif") == "png" == image_files.output_format("a.bmp")
    assert image_files.output_format("a.png", "webp") == "webp"


def test_cli_same_stem_different_formats_and_suffix(tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "photo.png", Image.fromarray(photo(8, 8)))
    write(folder / "photo.jpg", Image.fromarray(photo(8, 8, seed=1)))
    proc = run_cli(folder, "--output_dir", folder, "--model", model_file, "--suffix", "_up")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(folder)) == ["photo.jpg", "photo.png", "photo_up.jpg", "photo_up.png"]
    # Run again into the same folder: its outputs are no inputs, and exist already.
    proc = run_cli(folder, "--output_dir", folder, "--model", model_file, "--suffix", "_up")
    assert proc.returncode == 0, proc.stderr
    assert "upscaled 0 of 2 inputs" in proc.stdout and "2 skipped" in proc.stdout
    assert "photo_up_up" not in " ".join(os.listdir(folder))


def _icc_profile():
    from PIL import ImageCms  # pylint: disable=import-outside-toplevel
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


@pytest.mark.parametrize("image_format", ["png", "jpeg", "webp"])
def test_icc_profile_and_exif_are_kept(tmp_path, image_format):
    icc = _icc_profile()
    image = Image.fromarray(photo(8, 10))
    exif = image.getexif()
    exif[0x010F] = "Camera maker"  # Make
    source = write(tmp_path / "a.jpg", image, icc_profile=icc, exif=exif.tobytes())
    out = upscale.output_path(source, str(tmp_path), image_format)
    upscale.upscale_file(upscale.bicubic_resolver(), source, out, image_format=image_format)
    with Image.open(out) as result:
        assert result.info.get("icc_profile") == icc
        assert result.getexif().get(0x010F) == "Camera maker"
        assert result.getexif().get(0x0131) == image_files.SOFTWARE


def test_alpha_edges_are_premultiplied():
    yy, xx = np.mgrid[:32, :32]
    disk = ((yy - 15.5) ** 2 + (xx - 15.5) ** 2 <= 10 ** 2).astype(np.uint8) * 255
    rgb = np.repeat(disk[..., None], 3, axis=-1)  # white disk on transparent black
    out = upscale.upscale_array(upscale.bicubic_resolver(), rgb, disk, tile=0).astype(np.float64)
    alpha = out[..., 3:] / 255
    over_white = out[..., :3] * alpha + 255 * (1 - alpha)
    assert over_white.min() >= 255 - 8, over_white.min()
    assert ((0 < alpha) & (alpha < 1)).sum() > 50  # the edge is there, partly transparent


def test_small_images_run_whole_and_large_ones_tiled(tmp_path):
    assert upscale.resolve_tile("auto", 256, 256) == 0
    side = int(upscale.WHOLE_IMAGE_PIXELS ** 0.5) + 1
    assert upscale.resolve_tile("auto", side, side) == upscale.DEFAULT_TILE
    assert upscale.resolve_tile(96, 256, 256) == 96
    calls = []
    bicubic = upscale.bicubic_resolver()

    def counted(lr_u8):
        calls.append(lr_u8.shape)
        return bicubic(lr_u8)
    source = write(tmp_path / "a.png", Image.fromarray(photo(200, 208)))  # above DEFAULT_TILE
    info = upscale.upscale_file(counted, source, tmp_path / "a_x4.png")
    assert calls == [(200, 208, 3)] and info["tile"] == 0


def test_progress_writes_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(common, "PROGRESS_SECONDS", 0)
    stream = io.StringIO()
    progress = common.Progress(4, "tile", stream)
    for _ in range(4):
        progress.step()
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("1/4 tiles (25%)") and "left" in lines[0]
    assert lines[-1].startswith("4/4 tiles (100%)")
    assert not {"\x1b", "\r", "\b"} & set(stream.getvalue())


def test_progress_gives_a_first_estimate_after_the_first_tile(monkeypatch):
    monkeypatch.setattr(common, "PROGRESS_SECONDS", 3600)
    stream = io.StringIO()
    progress = common.Progress(40, "tile", stream)
    progress.update(0)
    assert stream.getvalue() == ""  # nothing counted yet
    for _ in range(3):
        progress.step()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("1/40 tiles (2%)") and "left" in lines[0], lines


def _imports_tensorflow(argv):
    """Runs argv under `python -X importtime`; True when tensorflow got imported."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc, any(line.rsplit("|", 1)[-1].strip() == "tensorflow"
                     for line in proc.stderr.splitlines())


@pytest.mark.parametrize("argv", [
    ["-m", "srgan_tf.upscale", "--help"],
    ["-m", "srgan_tf.upscale", "a.png", "--output_dir", "out", "--tile", "-1"],
    ["-m", "srgan_tf.upscale", "missing.png", "--output_dir", "out"],
    ["-m", "srgan_tf.evaluate", "--help"],
    ["export.py", "--help"],
])
def test_help_and_usage_errors_skip_tensorflow(argv):
    proc, imported = _imports_tensorflow(argv)
    assert proc.returncode in (0, 1, 2) and not imported, proc.stderr[-2000:]
