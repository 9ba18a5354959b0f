"""Crash safety: a run killed with SIGKILL and rerun ends bit-identical to an uninterrupted one."""

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import prepare

from tests.conftest import REPO, write_images

_SCRIPT = """
import sys
import keras
import tensorflow as tf
from srgan_tf import trainer
from srgan_tf.config import Recipe, TrainConfig

stage, run, hr, steps = sys.argv[1:5]
source = {"store": hr} if hr.endswith("store") else {"hr_dir": hr}
tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(0)
recipe = Recipe(num_feat=8, num_block=1, upsample_feat=32, disc_feat=4, crop_size=32, batch_size=2,
                vgg_input_size=32)
config = TrainConfig(stage=stage, checkpoint_dir=run, **source, recipe=recipe, steps=int(steps),
                     vgg_weights="none", save_every=2, summary_every=1, image_every=1000,
                     precision="float32", deterministic=True).validate()
trainer.Trainer(config).train()
"""
_STEPS = {"init": 8, "gan": 6}


def _start(script, stage, run, hr):
    return subprocess.Popen([sys.executable, str(script), stage, str(run), str(hr),
                             str(_STEPS[stage])], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc):
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]


def _logged_steps(log):
    """The steps of the training records of RUN/<stage>/log.jsonl, in the order written."""
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if '"mse"' in line]


def _kill_after(proc, log, step):
    """SIGKILLs `proc` once its log reports `step` (after at least one checkpoint)."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists():
            steps = _logged_steps(log)
            if steps and steps[-1] >= step:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _weights(stage_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(stage_dir)))
    names = [n for n, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(stage_dir)))
             if not n.startswith(("train_seconds", "save_counter", "_CHECKPOINTABLE"))]
    return {n: reader.get_tensor(n) for n in names}


@pytest.mark.parametrize("source, stages", [
    pytest.param("hr_dir", ("init", "gan"), marks=pytest.mark.slow), ("store", ("init",))])
def test_sigkill_and_rerun_is_bit_identical_for_both_stages(tmp_path, source, stages):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 48), (64, 56), (56, 64), (48, 60), (60, 48)])
    if source == "store":  # a decode-once store (its stream is read from raw pixel files)
        hr = tmp_path / "store"
        prepare.write_store(str(hr), hr_dir=str(tmp_path / "hr"), min_size=32)
    script = tmp_path / "train_tiny.py"
    script.write_text(_SCRIPT)
    straight, killed = tmp_path / "a", tmp_path / "b"
    rng = random.Random(1234)
    for stage in stages:
        _finish(_start(script, stage, straight, hr))
        kill_step = rng.randint(3, _STEPS[stage] - 1)  # after the first checkpoint (step 2)
        log = killed / stage / "log.jsonl"
        _kill_after(_start(script, stage, killed, hr), log, kill_step)
        latest = tf.train.latest_checkpoint(str(killed / stage))
        assert latest is not None
        saved = int(latest.rsplit("-", 1)[1])
        assert 0 < saved < _STEPS[stage]
        before = _logged_steps(log)
        _finish(_start(script, stage, killed, hr))
        # The rerun started at the checkpoint's step (a run from scratch would end the same).
        assert _logged_steps(log) == before + list(range(saved + 1, _STEPS[stage] + 1))
        a, b = _weights(straight / stage), _weights(killed / stage)
        assert set(a) == set(b) and any(n.startswith("generator/") or "optimizer" in n for n in a)
        different = [n for n in a if not np.array_equal(a[n], b[n])]
        assert not different, f"stage {stage}, killed at step {kill_step}: {different[:5]}"


_SLOW_SAVE = """
import os
import time
import tensorflow as tf

_write = tf.train.Checkpoint._write


def _write_and_pause(self, prefix, options=None, **kwargs):
    # The data files of ckpt-4 are written, then the run hangs before the checkpoint index
    # ("checkpoint" file) is updated: a kill now is a kill in the middle of a save.
    if prefix.endswith("ckpt-4") and options is not None:
        def pause(save_path):
            open(os.environ["SAVE_MARKER"], "w").close()
            time.sleep(120)
        options.experimental_write_callbacks.insert(0, pause)
    return _write(self, prefix, options=options, **kwargs)


tf.train.Checkpoint._write = _write_and_pause
"""


@pytest.mark.slow
def test_kill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    hr = tmp_path / "hr"
    write_images(hr, [(48, 48), (64, 56), (56, 64)])
    slow = tmp_path / "slow_save.py"
    slow.write_text(_SLOW_SAVE + _SCRIPT)
    marker = tmp_path / "saving"
    monkeypatch.setenv("SAVE_MARKER", str(marker))
    run = tmp_path / "run"
    proc = _start(slow, "init", run, hr)
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read()[-2000:] if proc.poll() is not None else "timeout"
    assert list((run / "init").glob("ckpt-4.*"))  # the interrupted save had started writing
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    latest = tf.train.latest_checkpoint(str(run / "init"))
    assert latest.endswith("ckpt-2")
    assert _weights(run / "init")  # readable
    script = tmp_path / "train_tiny.py"
    script.write_text(_SCRIPT)
    resumed = _start(script, "init", run, hr)
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-3000:]
    steps = _logged_steps(run / "init" / "log.jsonl")
    assert steps == [1, 2, 3, 4] + list(range(3, _STEPS["init"] + 1))  # resumed from ckpt-2
    assert tf.train.latest_checkpoint(str(run / "init")).endswith(f"ckpt-{_STEPS['init']}")
