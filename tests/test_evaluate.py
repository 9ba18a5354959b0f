"""Tests of srgan_tf.evaluate and its CLI: the protocol, the results, the published bicubic rows."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import evaluate
from srgan_tf.imaging import modcrop
from srgan_tf.models import Generator
from srgan_tf.upscale import bicubic_resolver
from tests.conftest import REPO, shared_dir, write_images

# Published x4 bicubic rows (MATLAB imresize + MATLAB SSIM) and the tolerance the issue allows.
PUBLISHED = {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)}
PSNR_TOLERANCE, SSIM_TOLERANCE = 0.15, 0.01


def run_cli(*args):
    """Runs `python -m srgan_tf.evaluate ARGS` from the repo; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "srgan_tf.evaluate", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def odd_set(tmp_path):
    """A set of three HR images of sizes that aren't multiples of 4, one of them grayscale."""
    folder = tmp_path / "Odd"
    write_images(folder, [(53, 37), (64, 61), (50, 45)])
    with Image.open(folder / "img02.png") as image:
        image.convert("L").save(folder / "img02.png")
    return folder


def test_modcrop_crops_bottom_right_to_multiples_of_4():
    image = np.arange(37 * 53 * 3).reshape([37, 53, 3])
    cropped = modcrop(image, 4)
    assert cropped.shape == (36, 52, 3)
    np.testing.assert_array_equal(cropped, image[:36, :52])
    assert modcrop(np.zeros([250, 361]), 4).shape == (248, 360)
    assert modcrop(np.zeros([48, 64, 3]), 4).shape == (48, 64, 3)


def test_protocol_lr_is_rounded_uint8_and_keeps_flat_areas_exact():
    hr = np.full([36, 52, 3], 77, np.uint8)
    lr = evaluate.protocol_lr(hr)
    assert lr.dtype == np.uint8 and lr.shape == (9, 13, 3)
    assert np.all(lr == 77)


def test_evaluate_scores_odd_and_grayscale_images(odd_set, tmp_path):
    results = evaluate.evaluate(bicubic_resolver(), [str(odd_set)], save_dir=str(tmp_path / "sr"))
    assert list(results) == ["Odd"]
    odd = results["Odd"]
    assert [row["name"] for row in odd["images"]] == ["img00.png", "img01.png", "img02.png"]
    assert [row["size"] for row in odd["images"]] == [[36, 52], [60, 64], [44, 48]]  # W x H
    for key in ("psnr_y", "ssim_y", "psnr_rgb"):
        assert odd[key] == pytest.approx(np.mean([row[key] for row in odd["images"]]))
    assert 15 < odd["psnr_y"] < 50 and 0 < odd["ssim_y"] < 1 and odd["images_per_s"] > 0
    assert odd["num_images"] == 3 and "bicubic" not in odd
    with Image.open(tmp_path / "sr" / "Odd" / "img02_x4.png") as saved:
        assert saved.size == (44, 48) and saved.mode == "RGB"


def test_evaluate_with_baseline_flags_a_model_no_better_than_bicubic(odd_set):
    results = evaluate.evaluate(bicubic_resolver(), [str(odd_set)], baseline_fn=bicubic_resolver())
    odd = results["Odd"]
    assert odd["bicubic"]["psnr_y"] == pytest.approx(odd["psnr_y"])
    assert odd["images"][0]["bicubic_ssim_y"] == pytest.approx(odd["images"][0]["ssim_y"])
    assert evaluate.near_bicubic(results) == ["Odd"]


def test_evaluate_errors_name_the_folder_or_file(tmp_path, odd_set):
    with pytest.raises(FileNotFoundError, match="--hr_dir .*missing is not a directory"):
        evaluate.evaluate(bicubic_resolver(), [str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="--hr_dir .*empty holds no image"):
        evaluate.evaluate(bicubic_resolver(), [str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="distinct names, Odd repeats"):
        evaluate.evaluate(bicubic_resolver(), [str(odd_set), str(odd_set) + "/"])


def test_evaluate_skips_bad_files_and_scores_the_rest(odd_set):
    (odd_set / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with Image.open(odd_set / "img00.png") as image:
        image.crop((0, 0, 3, 9)).save(odd_set / "tiny.png")
    results = evaluate.evaluate(bicubic_resolver(), [str(odd_set)])
    odd = results["Odd"]
    assert odd["num_images"] == 3 and len(odd["images"]) == 3 and np.isfinite(odd["psnr_y"])
    assert [s["name"] for s in odd["skipped"]] == ["broken.png", "tiny.png"]
    assert "cannot decode" in odd["skipped"][0]["reason"]
    assert "smaller than 4 x 4" in odd["skipped"][1]["reason"]
    assert evaluate.num_skipped(results) == 2


def test_cli_writes_json_with_skipped_files_and_fails(odd_set, tmp_path):
    (odd_set / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "r.json"
    proc = run_cli("--bicubic", "--hr_dir", odd_set, "--output_json", out)
    assert proc.returncode == 2
    assert "skipped broken.png: cannot decode" in proc.stdout and "img01.png" in proc.stdout
    assert "1 file(s) skipped" in proc.stderr
    results = json.loads(out.read_text())
    assert results["Odd"]["num_images"] == 3
    assert [s["name"] for s in results["Odd"]["skipped"]] == ["broken.png"]


def test_save_dir_keeps_existing_files_unless_overwrite(odd_set, tmp_path):
    earlier = tmp_path / "sr" / "Odd" / "img00_x4.png"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"earlier result")
    evaluate.evaluate(bicubic_resolver(), [str(odd_set)], save_dir=str(tmp_path / "sr"))
    assert earlier.read_bytes() == b"earlier result"
    assert (tmp_path / "sr" / "Odd" / "img01_x4.png").exists()
    evaluate.evaluate(bicubic_resolver(), [str(odd_set)], save_dir=str(tmp_path / "sr"),
                      overwrite=True)
    with Image.open(earlier) as image:
        assert image.size == (36, 52)


def test_evaluate_rejects_a_model_of_the_wrong_scale(odd_set):
    def x2(lr_u8):
        return np.repeat(np.repeat(lr_u8, 2, axis=0), 2, axis=1)
    with pytest.raises(ValueError, match=r"cannot evaluate .*img00.png: the model returned "
                                         r"\(26, 18, 3\) for a 9 x 13 input"):
        evaluate.evaluate(x2, [str(odd_set)])


@pytest.mark.parametrize("name", ["Set5", "Set14"])
def test_bicubic_reproduces_the_published_rows(name):
    folder = shared_dir(name)
    result = evaluate.evaluate(bicubic_resolver(), [str(folder)])[name]
    psnr, ssim = PUBLISHED[name]
    assert result["num_images"] == {"Set5": 5, "Set14": 14}[name]
    assert abs(result["psnr_y"] - psnr) < PSNR_TOLERANCE, result["psnr_y"]
    assert abs(result["ssim_y"] - ssim) < SSIM_TOLERANCE, result["ssim_y"]


def test_cli_bicubic_writes_json_and_table(odd_set, tmp_path):
    out = tmp_path / "results" / "bicubic.json"
    proc = run_cli("--bicubic", "--hr_dir", odd_set, "--output_json", out)
    assert proc.returncode == 0, proc.stderr
    assert "img01.png" in proc.stdout and "mean" in proc.stdout and "images/s" in proc.stdout
    results = json.loads(out.read_text())
    assert set(results) == {"Odd"}
    assert set(results["Odd"]) >= {"psnr_y", "ssim_y", "psnr_rgb", "images"}
    assert set(results["Odd"]["images"][0]) >= {"name", "psnr_y", "ssim_y", "psnr_rgb"}


def test_cli_model_prints_bicubic_beside_it_and_warns(odd_set, tmp_path):
    generator = Generator(num_feat=8, num_block=1, upsample_feat=32)
    generator(tf.zeros([1, 8, 8, 3]))
    generator.save(tmp_path / "g.keras")  # untrained: must be flagged as no better than bicubic
    proc = run_cli("--model", tmp_path / "g.keras", "--hr_dir", odd_set,
                   "--save_dir", tmp_path / "sr", "--output_json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "bic PSNR-Y" in proc.stdout
    assert "WARNING: on Odd the model is within 0.1 dB of bicubic" in proc.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["Odd"]["psnr_y"] < results["Odd"]["bicubic"]["psnr_y"]
    assert sorted(os.listdir(tmp_path / "sr" / "Odd")) == [
        "img00_x4.png", "img01_x4.png", "img02_x4.png"]


def test_cli_usage_errors_exit_2_with_the_flag_named(tmp_path):
    proc = run_cli("--hr_dir", tmp_path)
    assert proc.returncode == 2
    assert "give exactly one of --checkpoint_dir, --model or --bicubic, got none" in proc.stderr
    proc = run_cli("--bicubic", "--hr_dir", tmp_path / "nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("nope is not a directory")


def test_artifact_scores_are_optional_and_reported(odd_set, tmp_path):
    plain = evaluate.evaluate(bicubic_resolver(), [odd_set])["Odd"]
    assert "checkerboard" not in plain
    full = evaluate.evaluate(bicubic_resolver(), [odd_set], artifacts=True)["Odd"]
    assert set(evaluate.ARTIFACT_SCORES) <= set(full) and \
        set(evaluate.ARTIFACT_SCORES) <= set(full["images"][0])
    # Bicubic against itself: no checkerboard residual, no colour shift to speak of, blurry.
    assert full["checkerboard"] == 0.0
    assert full["color_shift"] < 1.0 and full["hf_ratio"] < 0.8
    out = tmp_path / "a.json"
    proc = run_cli("--bicubic", "--artifacts", "--hr_dir", odd_set, "--output_json", out)
    assert proc.returncode == 0, proc.stderr
    assert "checker" in proc.stdout
    assert "hf_ratio" in json.loads(out.read_text())["Odd"]


@pytest.mark.slow
def test_cli_precision_bf16_scores_close_to_float32(odd_set, tmp_path):
    from tests.conftest import lively_generator
    lively_generator().save(tmp_path / "g.keras")
    scores = {}
    for precision in ("float32", "mixed_bfloat16"):
        out = tmp_path / f"{precision}.json"
        proc = run_cli("--model", tmp_path / "g.keras", "--hr_dir", odd_set, "--precision",
                       precision, "--output_json", out)
        assert proc.returncode == 0, proc.stderr
        scores[precision] = json.loads(out.read_text())["Odd"]["psnr_rgb"]
    assert abs(scores["float32"] - scores["mixed_bfloat16"]) < 0.5
    proc = run_cli("--bicubic", "--hr_dir", odd_set, "--precision", "fp8")
    assert proc.returncode == 2 and "--precision" in proc.stderr


def test_degraded_lr_scores_lower_and_is_recorded(odd_set):
    clean = evaluate.evaluate(bicubic_resolver(), [odd_set])["Odd"]
    jpeg = evaluate.evaluate(bicubic_resolver(), [odd_set], degradation=("jpeg", 10))["Odd"]
    assert jpeg["degradation"] == "jpeg:10" and "degradation" not in clean
    assert jpeg["psnr_y"] < clean["psnr_y"] - 0.1
    again = evaluate.evaluate(bicubic_resolver(), [odd_set], degradation=("noise", 5.0))["Odd"]
    noise = evaluate.evaluate(bicubic_resolver(), [odd_set], degradation=("noise", 5.0))["Odd"]
    assert again["psnr_y"] == noise["psnr_y"]  # fixed noise: the same score every run


def test_cli_degradation_flag(odd_set, tmp_path):
    proc = run_cli("--bicubic", "--hr_dir", odd_set, "--degradation", "jpeg:30",
                   "--output_json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "LR degraded by jpeg:30" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())["Odd"]["degradation"] == "jpeg:30"
    proc = run_cli("--bicubic", "--hr_dir", odd_set, "--degradation", "jpeg:300")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --degradation must be jpeg:QUALITY (1-100), blur:SIGMA or noise:SIGMA (> 0), "
        "got 'jpeg:300'")
