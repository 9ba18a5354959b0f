"""train.py from the command line: exit codes, one-line errors, signals, a real two-stage run."""

import json
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.conftest import REPO


def _train(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _error_line(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("args,message", [
    (["--stage", "warmup", "--checkpoint_dir", "RUN"], "--stage=warmup: value should be one of"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--crop_size", "30"],
     "--crop_size must be a positive multiple of 4, got 30"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--steps", "-1"],
     "--steps must be >= 0, got -1"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "no/such/dir"],
     "--hr_dir 'no/such/dir' is not a directory"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--preset", "x"],
     "--preset must be one of tensorlayer, paper, got 'x'"),
    (["--stage", "init", "--checkpoint_dir", "RUN"], "give exactly one of --hr_dir, --tfds or --store"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample",
      "--crops_per_image", "0"], "--crops_per_image must be >= 1, got 0"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--augment",
      "rot"], "--augment=rot: value should be one of"),
    (["--stage", "gan", "--checkpoint_dir", "RUN", "--gan_update", "both"],
     "--gan_update=both: value should be one of <alternating|shared>"),
    (["--stage", "gan", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--vgg_weights",
      "none"], "--stage gan needs init weights"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--bn_momentum",
      "1.5"], "--bn_momentum must be in [0, 1), got 1.5"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample",
      "--vgg_input_size", "-1"], "--vgg_input_size must be >= 0 (0: the crop itself), got -1"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--vgg_weights",
      "missing.h5"], "--vgg_weights must be 'imagenet', 'none' or an existing .h5 file"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--degradation",
      "jpeg:0"], "--degradation must be bicubic, realistic, jpeg:QUALITY (1-100), blur:SIGMA or "
                 "noise:SIGMA (> 0), got 'jpeg:0'"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--degradation",
      "blur:9", "--crop_size", "96"], "--degradation blur:9 reaches 27 LR pixels: --crop_size "
                                      "must be above 108, got 96"),
])
def test_bad_usage_is_one_line_and_exit_code_2(tmp_path, args, message):
    args = [str(tmp_path / a) if a == "RUN" else a for a in args]
    result = _train(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = _error_line(result)
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "RUN").exists()  # refused before any work: no run directory


def test_folder_without_usable_images_exits_2(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "tiny.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = _train("--stage", "init", "--checkpoint_dir", str(tmp_path / "run"), "--hr_dir",
                    str(tmp_path / "photos"))
    assert result.returncode == 2
    assert "no usable training images" in _error_line(result)[0]
    assert "tiny.png" in result.stderr  # the skipped file is named


def test_recipe_flags_are_kept_in_config_json(tmp_path):
    result = _train("--stage", "init", "--steps", "0", "--checkpoint_dir", str(tmp_path / "run"),
                    "--hr_dir", str(REPO / "data" / "sample"), "--crop_size", "64",
                    "--batch_size", "2", "--vgg_weights", "none", "--bn_momentum", "0.99",
                    "--vgg_input_size", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    recipe = json.loads((tmp_path / "run" / "init" / "config.json").read_text())["recipe"]
    assert (recipe["bn_momentum"], recipe["vgg_input_size"]) == (0.99, 0)


@pytest.mark.slow
def test_two_stages_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    common = ["--hr_dir", str(REPO / "data" / "sample"), "--checkpoint_dir", str(run),
              "--crop_size", "64", "--batch_size", "2", "--vgg_weights", "none"]
    init = _train("--stage", "init", "--steps", "2", *common, cwd=tmp_path)
    assert init.returncode == 0, init.stderr[-3000:]
    gan = _train("--stage", "gan", "--steps", "1", *common, cwd=tmp_path)
    assert gan.returncode == 0, gan.stderr[-3000:]
    assert "gan stage starts from the init generator" in gan.stderr
    # The update mode, augmentation and schedule are logged at start and kept in config.json.
    # 5 photos, batch 2, 4 crops per decoded image: an epoch reads 4 images in 8 steps, so the
    # decay every 1000 epochs is every 8000 steps.
    assert ("stage gan: alternating updates, augment none; learning rate 0.0001 x0.1 every 8000 "
            "steps, 1 steps in all") in gan.stderr
    with open(run / "gan" / "config.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["gan_update"] == "alternating" and saved["augment"] == "none"
    assert saved["schedule"] == {"total_steps": 1, "steps_per_epoch": 8, "learning_rate": 1e-4,
                                 "decay_steps": 8000, "decay_rate": 0.1,
                                 "gan_update": "alternating"}
    for stage in ("init", "gan"):
        assert (run / stage / "generator.keras").is_file()
        assert (run / stage / "sample_x4.png").is_file()
    again = _train("--stage", "gan", "--steps", "1", *common, cwd=tmp_path)
    assert again.returncode == 0 and "is complete" in again.stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_a_rerun_resumes(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, str(REPO / "train.py"), "--stage", "init", "--hr_dir",
            str(REPO / "data" / "sample"), "--checkpoint_dir", str(run), "--crop_size", "32",
            "--batch_size", "2", "--steps", "100000", "--save_every", "100000",
            "--summary_every", "1", "--precision", "float32"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "init" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM at step" in stderr
    last = json.loads(log.read_text().splitlines()[-1])["step"]
    assert tf.train.latest_checkpoint(str(run / "init")).endswith(f"ckpt-{last}")
    again = _train(*args[2:-6], "--steps", str(last + 1), "--summary_every", "1",
                   "--precision", "float32")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed init stage at step {last}" in again.stderr


_TINY = ["--hr_dir", str(REPO / "data" / "sample"), "--crop_size", "32", "--batch_size", "2",
         "--precision", "float32", "--summary_every", "1"]

# train.py with checkpoint saves that first touch $SAVE_MARKER, then hang for an hour: a signal
# sent after the marker appears arrives while the trainer is saving.
_SLOW_SAVE = """
import os, runpy, sys, time
import tensorflow as tf

_save = tf.train.CheckpointManager.save


def slow_save(self, *args, **kwargs):
    open(os.environ["SAVE_MARKER"], "w").close()
    time.sleep(3600)
    return _save(self, *args, **kwargs)


tf.train.CheckpointManager.save = slow_save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _wait_for(condition, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not condition():
        time.sleep(0.1)
    assert condition(), proc.stderr.read()[-3000:] if proc.poll() is not None else "timeout"


def _logged(log):
    return log.exists() and len(log.read_text().splitlines()) >= 2


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--stage", "init",
                             "--checkpoint_dir", str(run), "--steps", "100000", "--save_every",
                             "100000", *_TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = run / "init" / "log.jsonl"
    _wait_for(lambda: _logged(log), proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    last = json.loads(log.read_text().splitlines()[-1])["step"]
    assert f"interrupted: stopped by SIGINT at step {last}; rerun the same command" in stderr
    assert tf.train.latest_checkpoint(str(run / "init")).endswith(f"ckpt-{last}")


@pytest.mark.slow
def test_a_second_signal_stops_at_once(tmp_path, monkeypatch):
    run, marker = tmp_path / "run", tmp_path / "saving"
    (tmp_path / "slow_save.py").write_text(_SLOW_SAVE)
    monkeypatch.setenv("SAVE_MARKER", str(marker))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "slow_save.py"),
                             str(REPO / "train.py"), "--stage", "init", "--checkpoint_dir",
                             str(run), "--steps", "100000", "--save_every", "100000", *_TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _logged(run / "init" / "log.jsonl"), proc)
        proc.send_signal(signal.SIGINT)
        _wait_for(marker.exists, proc)  # the first signal's checkpoint save has begun (and hangs)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)  # not the hour the save would take
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGINT, stderr[-2000:]  # KeyboardInterrupt, uncaught
    assert "SIGINT received: saving a checkpoint after this step" in stderr
    assert tf.train.latest_checkpoint(str(run / "init")) is None  # the save never happened


@pytest.mark.slow
def test_nan_exits_1_with_one_error_line_and_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    result = _train("--stage", "init", "--checkpoint_dir", str(run), "--steps", "6",
                    "--save_every", "2", "--debug_nan_step", "3", *_TINY)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = _error_line(result)
    assert len(lines) == 1 and "step 3: non-finite mse" in lines[0], result.stderr[-2000:]
    assert lines[0].endswith(f"the latest checkpoint is still {run}/init/ckpt-2")
    assert "Traceback" not in result.stderr
    assert tf.train.latest_checkpoint(str(run / "init")).endswith("ckpt-2")


@pytest.mark.slow
def test_a_failed_checkpoint_write_exits_1_with_one_error_line(tmp_path):
    run = tmp_path / "run"
    (run / "init" / "ckpt-4.index").mkdir(parents=True)  # the save of step 4 cannot write here
    result = _train("--stage", "init", "--checkpoint_dir", str(run), "--steps", "6",
                    "--save_every", "2", *_TINY)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = _error_line(result)
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"error: cannot write checkpoint 4 in {run}/init: ")
    assert lines[0].endswith(f"the latest checkpoint is still {run}/init/ckpt-2")
    assert "Traceback" not in result.stderr
    assert tf.train.latest_checkpoint(str(run / "init")).endswith("ckpt-2")
