"""train.py from the command line: one-line errors with exit code 2, a real two-stage run."""

import subprocess
import sys

import pytest

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
    (["--stage", "gan", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--vgg_weights",
      "none"], "--stage gan needs init weights"),
    (["--stage", "init", "--checkpoint_dir", "RUN", "--hr_dir", "data/sample", "--vgg_weights",
      "missing.h5"], "--vgg_weights must be 'imagenet', 'none' or an existing .h5 file"),
])
def test_bad_usage_is_one_line_and_exit_code_2(tmp_path, args, message):
    args = [str(tmp_path / a) if a == "RUN" else a for a in args]
    result = _train(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = _error_line(result)
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_folder_without_usable_images_exits_2(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "tiny.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = _train("--stage", "init", "--checkpoint_dir", str(tmp_path / "run"), "--hr_dir",
                    str(tmp_path / "photos"))
    assert result.returncode == 2
    assert "no usable training images" in _error_line(result)[0]
    assert "tiny.png" in result.stderr  # the skipped file is named


def test_two_stages_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    common = ["--hr_dir", str(REPO / "data" / "sample"), "--checkpoint_dir", str(run),
              "--crop_size", "64", "--batch_size", "2", "--vgg_weights", "none"]
    init = _train("--stage", "init", "--steps", "2", *common, cwd=tmp_path)
    assert init.returncode == 0, init.stderr[-3000:]
    gan = _train("--stage", "gan", "--steps", "1", *common, cwd=tmp_path)
    assert gan.returncode == 0, gan.stderr[-3000:]
    assert "gan stage starts from the init generator" in gan.stderr
    for stage in ("init", "gan"):
        assert (run / stage / "generator.keras").is_file()
        assert (run / stage / "sample_x4.png").is_file()
    again = _train("--stage", "gan", "--steps", "1", *common, cwd=tmp_path)
    assert again.returncode == 0 and "is complete" in again.stderr


def test_sigterm_saves_a_checkpoint_and_a_rerun_resumes(tmp_path):
    import json
    import signal
    import time
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
    import tensorflow as tf
    assert tf.train.latest_checkpoint(str(run / "init")).endswith(f"ckpt-{last}")
    again = _train(*args[2:-6], "--steps", str(last + 1), "--summary_every", "1",
                   "--precision", "float32")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed init stage at step {last}" in again.stderr
