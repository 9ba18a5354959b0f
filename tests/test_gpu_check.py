"""The machine check (srgan_tf/gpu_check.py, scripts/gpu_check.sh): its JSON, its loss check, the
pipeline part's errors and the script's one-line error."""

import json
import os
import subprocess

import pytest

from srgan_tf import gpu_check
from tests.conftest import REPO, SAMPLE_DIR

TINY = (("num_block", 1), ("num_feat", 8), ("upsample_feat", 32), ("disc_feat", 4))


def _write_log(path, mses):
    with open(path, "w", encoding="utf-8") as f:
        for step, mse in enumerate(mses, 1):
            f.write(json.dumps({"step": step, "mse": mse, "learning_rate": 1e-4}) + "\n")
        f.write(json.dumps({"step": len(mses), "val_psnr": 20.0}) + "\n")  # no mse: ignored


def test_loss_trend_compares_first_and_last_logged_mse(tmp_path):
    log = tmp_path / "log.jsonl"
    _write_log(log, [0.3, 0.1, 0.2])
    trend = gpu_check.loss_trend(str(log))
    assert trend == {"first": 0.3, "last": 0.2, "first_step": 1, "last_step": 3, "records": 3,
                     "falling": True}
    _write_log(log, [0.1, 0.05, 0.2])
    assert not gpu_check.loss_trend(str(log))["falling"]
    _write_log(log, [0.1])
    with pytest.raises(ValueError, match="log.jsonl has 1 records with 'mse', need 2"):
        gpu_check.loss_trend(str(log))


@pytest.mark.parametrize("written,expected", [
    ({"pipeline": {"files": 20.0, "store": 150.0}}, {"files": 20.0, "store": 150.0}),
    ({"pipeline_patches_per_s": 900.0},
     {"error": "python -m srgan_tf.bench --sections pipeline --quick --output_json {out} "
               "wrote no "
               "'pipeline' object"}),
    (None, {"error": "exit code 2: error: --sections must be a comma list"}),
])
def test_pipeline_part_copies_the_object_or_records_the_error(tmp_path, monkeypatch, written,
                                                              expected):
    def fake_run(args, timeout):
        # --quick: medians of 3 short runs, so the part ends well inside its timeout.
        assert args[:6] == ["-m", "srgan_tf.bench", "--sections", "pipeline", "--quick",
                            "--output_json"]
        if written is None:
            return 2, "", "some log\nerror: --sections must be a comma list\n", 1.0
        with open(args[6], "w", encoding="utf-8") as f:
            json.dump(written, f)
        return 0, "", "", 1.0

    monkeypatch.setattr(gpu_check, "_run", fake_run)
    result = gpu_check.check_pipeline(gpu_check.CheckConfig(output="unused"), str(tmp_path))
    assert result.pop("seconds") == 1.0
    if "error" in expected:
        expected = {"error": expected["error"].format(out=tmp_path / "pipeline.json")}
    assert result == expected


def test_cpu_defaults_are_small_shapes_and_networks():
    cpu = gpu_check.CheckConfig(output="unused", gpu=False).resolved()
    assert (cpu.step_batch, cpu.step_lr_patch, cpu.train_crop) == (2, 8, 48)
    # A 224x224 VGG19 pass per image, or the tensorlayer discriminator's 33M weights, would be
    # most of a small gan step on a CPU.
    assert dict(cpu.recipe_overrides) == {"vgg_input_size": 0, "num_block": 4, "disc_feat": 16}
    gpu = gpu_check.CheckConfig(output="unused", gpu=True).resolved()
    assert (gpu.step_batch, gpu.step_lr_patch, gpu.recipe_overrides) == (16, 24, ())
    assert gpu_check.CheckConfig(output="unused", gpu=False,
                                 recipe_overrides=TINY).resolved().recipe_overrides == TINY


def test_script_without_srgan_tf_is_one_line_error(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'tensorflow'\" >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True,
                            text=True, env=dict(os.environ, PYTHON=str(fake)), timeout=60,
                            check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {fake} cannot import srgan_tf (ModuleNotFoundError: No module named "
        "'tensorflow'): activate its environment or set PYTHON"]


def test_bad_flag_values_name_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--precisions must be a comma list of float32, "
                                         "mixed_bfloat16, mixed_float16, got 'float8'"):
        gpu_check.CheckConfig(output="x", precisions=("float8",)).validate()
    with pytest.raises(FileNotFoundError, match="--hr_dir .*missing"):
        gpu_check.CheckConfig(output="x", hr_dir=str(tmp_path / "missing")).validate()


def test_timings_after_the_budget_are_skipped():
    config = gpu_check.CheckConfig(output="x", stages=("gan",), presets=("paper",),
                                   precisions=("float32", "mixed_float16"), budget_minutes=0.5)
    steps = gpu_check.time_steps(config.resolved(), deadline=0.0)
    skipped = {"skipped": "--budget_minutes 0.5 reached"}
    assert steps == {"gan": {"paper": {p: {"plain": skipped, "xla": skipped}
                                       for p in ("float32", "mixed_float16")}}}


@pytest.mark.slow(reason="two training processes and an export (~1-2 min on 2 busy cores)")
def test_cpu_run_writes_the_json(tmp_path):
    output = tmp_path / "check.json"
    config = gpu_check.CheckConfig(
        output=str(output), work_dir=str(tmp_path / "run"), hr_dir=str(SAMPLE_DIR),
        train_steps=30, train_crop=32, train_batch=4, step_batch=2, step_lr_patch=8, warmup=0,
        repeats=1, stages=("init",), presets=("tensorlayer",), precisions=("float32",),
        recipe_overrides=TINY, pipeline_timeout=0.1, budget_minutes=60.0, gpu=False)
    returned = gpu_check.run_check(config)
    results = json.loads(output.read_text())
    assert results == json.loads(json.dumps(returned))
    assert results["ok"] and not results["gpu"] and results["small_shapes"]
    assert results["note"] == gpu_check.CPU_NOTE and results["device"].startswith("CPU: ")
    train = results["train"]
    assert train["ok"] and train["mse"]["falling"] and train["mse"]["last_step"] == 30
    assert train["mse"]["last"] < train["mse"]["first"]
    export = results["export"]
    assert export["ok"] and export["output_shape"] == [1, 128, 128, 3]
    assert os.path.isdir(export["path"]) and export["path"].startswith(str(tmp_path / "run"))
    assert results["pipeline"]["error"] == "timed out after 0 s"
    row = results["steps"]["init"]["tensorlayer"]["float32"]
    assert row["plain"]["ms"] > 0 and row["xla"]["ms"] > 0
    assert row["xla_speedup"] == pytest.approx(row["plain"]["ms"] / row["xla"]["ms"])
    report = gpu_check.format_report(results)
    assert report.splitlines()[0].endswith(f"({gpu_check.CPU_NOTE})")
    assert "| init | tensorlayer | float32 |" in report and report.endswith("s")
