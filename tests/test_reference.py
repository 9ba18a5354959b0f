"""The reference run end to end at a tiny budget: train both stages, evaluate, write results."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

from srgan_tf import reference
from tests.conftest import write_images

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_reference_run_end_to_end_and_resumes(tmp_path, tiny_recipe, restore_policy):
    photos = tmp_path / "photos"
    write_images(photos, [(64, 64)] * 7 + [(48, 56)])
    bench = tmp_path / "Bench"
    write_images(bench, [(40, 36), (52, 44)], seed=3)
    config = reference.ReferenceConfig(
        hr_dir=str(photos), run_dir=str(tmp_path / "run"), eval_dirs=(str(bench),),
        recipe=tiny_recipe, init_minutes=0.03, gan_minutes=0.03, vgg_weights="none",
        eval_every=5, save_every=5, precision="float32")
    results = reference.run(config)
    run = tmp_path / "run"
    assert sorted(os.listdir(run / "data" / "val")) == ["0007_img07.png"]
    assert len(os.listdir(run / "data" / "train")) == 7
    for stage in ("init", "gan"):
        assert (run / stage / "generator.keras").is_file()
        records = [json.loads(line) for line in open(run / stage / "log.jsonl")]
        assert any("val_psnr_y" in r for r in records) and any("mse" in r for r in records)
    saved = json.loads((run / "results.json").read_text())
    for method in ("bicubic", "init", "gan"):
        assert set(saved[method]["Bench"]) >= {"psnr_y", "ssim_y", "checkerboard", "hf_ratio",
                                              "color_shift"}
    assert results["bicubic"]["Bench"]["psnr_y"] == saved["bicubic"]["Bench"]["psnr_y"]
    table = (run / "results.md").read_text()
    assert "ours, stage init (SRResNet)" in table and "SRGAN (paper)" in table
    assert (run / "comparison.png").is_file()
    steps = {s: json.loads(line)["step"] for s in ("init", "gan")
             for line in open(run / s / "log.jsonl")}
    # A rerun finds both budgets spent: no more training, the same generators, fresh results.
    reference.run(config)
    again = {s: json.loads(line)["step"] for s in ("init", "gan")
             for line in open(run / s / "log.jsonl")}
    assert again == steps


@pytest.mark.slow
def test_cli_passes_icnr_and_presets_to_the_run(tmp_path):
    # The CLI builds the ReferenceConfig from its flags (the training itself is replaced here).
    photos, bench = tmp_path / "photos", tmp_path / "Bench"
    write_images(photos, [(32, 32)] * 2)
    write_images(bench, [(32, 32)])
    probe = ("import sys\nfrom srgan_tf import reference\n"
             "reference.run = lambda c: print('CONFIG', c.recipe.icnr, c.recipe.preset, "
             "c.recipe.bn_momentum, c.gan_batch_size, c.eval_dirs)\n"
             "from srgan_tf.cli.reference import run\nrun()\n")
    args = ["--hr_dir", str(photos), "--eval_dir", str(bench), "--run_dir", str(tmp_path / "run")]
    for extra, expected in (([], "CONFIG False tensorlayer 0.9 None"),
                            (["--icnr", "--bn_momentum", "0.99", "--gan_batch_size", "8"],
                             "CONFIG True tensorlayer 0.99 8")):
        result = subprocess.run([sys.executable, "-c", probe, *args, *extra], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"{expected} ('{bench}',)" in result.stdout
    missing = subprocess.run([sys.executable, "-c", probe, *args, "--hr_dir", str(tmp_path / "no")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no is not a directory" in missing.stderr
