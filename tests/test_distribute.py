"""tf.distribute: per-worker data shards, strategy flags, MirroredStrategy on 2 logical CPU devices
and a 2-worker MultiWorkerMirroredStrategy cluster on 127.0.0.1, both checked against the default
strategy with the same global batch and data.

The two training tests run in fresh processes (tests/distributed_run.py): logical devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow initialises, which this process has
already done.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import data, distribute, trainer
from srgan_tf.config import Recipe, TrainConfig
from tests import distributed_run
from tests.conftest import REPO
from tests.test_trainer import assert_matches_reference

TIMEOUT = 400  # seconds for one training process (they take ~20-60 s on 2 busy cores)

# Tolerances of "the same training". Stage init agrees to ~1e-8. In stage gan the tiny
# discriminator normalises 1x1 maps over 4 samples, where Keras's synchronized BatchNorm
# (E[x^2] - E[x]^2) and the single-device two-pass variance differ by ~1e-6 relative, and Adam
# turns such differences into sign flips of the update (lr = 1e-4 per step) for the few weights
# whose gradient is ~0. How far that goes depends on the crops. Measured over 3 gan steps, with
# the crops of the current draws (data.crop_draws): trainable weights differ by at most 3.0e-4
# (three flipped updates) and by 6.2e-6 on average, the discriminator's moving statistics by at
# most 3.3e-3 (the cancellation of E[x^2] - E[x]^2 itself), losses by 4.7e-3 relative; with the
# earlier draws 7e-5, 1e-8 and 2e-5. Per-replica BatchNorm instead (no synchronisation), same
# crops: gan losses 2.6e-2 apart, trainable weights 8.8e-4 (max) and 5.1e-5 (mean), moving
# statistics 6.2e-2; and already in stage init losses 1.5e-5, weights 4.7e-4 and 2.9e-5 apart.
# So these bounds still fail it, in both stages. On an Intel Xeon with AMX-BF16 the same
# synchronised run gave gan weights 2.3e-4 (max) and 3.6e-6 (mean), moving statistics 2.0e-3,
# and the adversarial loss of step 3 1.1e-2 relative (the generator's pass through the
# discriminator just updated, where the flipped updates act first; the other losses within
# 5e-4); per-replica BatchNorm there already fails stage init at step 1.
LOSS_RTOL = {"init": 1e-5, "gan": 2e-2}
WEIGHT_ATOL = {"init": 1e-6, "gan": 6e-4}  # gan: up to two opposite Adam updates per step
WEIGHT_MEAN_ATOL = {"init": 1e-8, "gan": 2e-5}
MOVING_ATOL = {"init": 1e-6, "gan": 1e-2}  # BatchNorm moving mean and variance


def _log(run_dir, stage):
    with open(os.path.join(run_dir, stage, "log.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if '"step"' in line]


def _model_tensors(run_dir, stage):
    """Returns {name: array} of the latest checkpoint's model weights (trainable weights and BN
    statistics) and {name: array} of its integer state (step, optimizer iterations)."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, stage)))
    weights, counters = {}, {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith("_CHECKPOINTABLE") or "save_counter" in name:
            continue
        value = reader.get_tensor(name)
        if value.dtype.kind in "iu":
            counters[name] = value
        elif "train_seconds" not in name and "optimizer/_variables/" not in name:
            weights[name] = value  # not Adam's moments: near-zero gradients make them noisy
    return weights, counters


def assert_same_training(run_a, run_b, steps):
    """Checks that two runs logged the same losses and ended with the same weights."""
    for stage in ("init", "gan"):
        log_a, log_b = _log(run_a, stage), _log(run_b, stage)
        assert [r["step"] for r in log_a] == [r["step"] for r in log_b] == list(range(1, steps + 1))
        for a, b in zip(log_a, log_b):
            # Step 1 of each stage runs identical weights on identical data.
            rtol = 1e-5 if a["step"] == 1 else LOSS_RTOL[stage]
            for term in set(a) - {"step", "train_seconds", "steps_per_sec", "input_wait"}:
                assert b[term] == pytest.approx(a[term], rel=rtol), (stage, a["step"], term)
        weights_a, counters_a = _model_tensors(run_a, stage)
        weights_b, counters_b = _model_tensors(run_b, stage)
        assert counters_a == counters_b and set(weights_a) == set(weights_b)
        assert int(counters_a["step/.ATTRIBUTES/VARIABLE_VALUE"]) == steps
        for moving in (False, True):
            diffs = np.concatenate([np.abs(weights_a[k] - weights_b[k]).ravel()
                                    for k in weights_a if ("/moving_" in k) == moving])
            if moving:
                assert diffs.max() <= MOVING_ATOL[stage], (stage, "moving", diffs.max())
            else:
                assert diffs.max() <= WEIGHT_ATOL[stage], (stage, diffs.max())
                assert diffs.mean() <= WEIGHT_MEAN_ATOL[stage], (stage, diffs.mean())


def _global_batches(image_dir, count=2):
    """HR of the first `count` global batches of the tiny recipe, on one device."""
    config = distributed_run.tiny_config(str(image_dir), "unused", "init", 1)
    stream = trainer.prepare_data(config, scan_cache=False)
    return np.stack([hr.numpy() for _, hr in stream.dataset().take(count)])


# ------------------------------------------------------------------------- in this process


@pytest.mark.parametrize("crops_per_image", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_input_pipelines_reassemble_the_global_stream(image_dir, crops_per_image):
    files = data.scan_images(data.list_images(str(image_dir)), 32)[0]
    # 6 images: batches cross epochs
    stream = data.TrainingData(files, 32, 8, seed=3, crops_per_image=crops_per_image)
    steps, start = 3, 2
    whole = [hr.numpy() for _, hr in stream.dataset(start).take(steps)]
    for pipelines, replicas in ((1, 1), (1, 2), (2, 2), (2, 4), (4, 8)):
        local = replicas // pipelines
        shards = [[hr.numpy() for _, hr in stream.dataset(
            start, tf.distribute.InputContext(pipelines, p, replicas)).take(steps * local)]
            for p in range(pipelines)]
        for t in range(steps):
            # Step t: pipeline p hands its batches t*local .. to its replicas, in replica order.
            parts = [shards[p][t * local + j] for p in range(pipelines) for j in range(local)]
            assert all(part.shape[0] == 8 // replicas for part in parts)
            np.testing.assert_array_equal(np.concatenate(parts), whole[t])


def test_batch_must_split_evenly_over_replicas(image_dir):
    files = data.scan_images(data.list_images(str(image_dir)), 32)[0]
    with pytest.raises(ValueError, match="--batch_size 6 must be a multiple of the 4 replicas"):
        data.TrainingData(files, 32, 6).dataset(0, tf.distribute.InputContext(2, 0, 4))


@pytest.mark.parametrize("kwargs,message", [
    (dict(strategy="horovod"), "--strategy must be one of default, mirrored, multi_worker, tpu"),
    (dict(devices=("/gpu:0",)), "--devices needs --strategy mirrored, got --strategy default"),
    (dict(strategy="mirrored", devices=()), "--devices must list at least one device"),
    (dict(strategy="mirrored", tpu="local"), "--tpu needs --strategy tpu"),
])
def test_bad_strategy_flags_are_clear_errors(image_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(stage="init", checkpoint_dir="run", hr_dir=str(image_dir), **kwargs).validate()


@pytest.mark.parametrize("tf_config,message", [
    (None, "--strategy multi_worker needs the TF_CONFIG environment variable"),
    ("{cluster", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "has no cluster with workers"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
     "task must name a type and index of its cluster"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, image_dir, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    config = TrainConfig(stage="init", checkpoint_dir="run", hr_dir=str(image_dir),
                         strategy="multi_worker")
    with pytest.raises(ValueError, match=message):
        distribute.make_strategy(config)


def test_default_strategy_is_the_chief_of_one_worker():
    strategy = tf.distribute.get_strategy()
    assert distribute.is_chief(strategy) and distribute.worker_count(strategy) == 1
    np.testing.assert_array_equal(distribute.replica_gatherer(strategy)([1.0, 2.0]), [[1.0, 2.0]])


@pytest.mark.slow
def test_cli_mirrored_strategy_runs_and_is_recorded(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--stage", "init", "--checkpoint_dir",
         str(tmp_path / "run"), "--hr_dir", str(REPO / "data" / "sample"), "--crop_size", "64",
         "--batch_size", "2", "--steps", "1", "--precision", "float32", "--strategy", "mirrored",
         "--devices", "/cpu:0"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--strategy mirrored: 1 replica(s) in sync, 1 worker(s), chief" in result.stderr
    saved = trainer.read_stage_config(str(tmp_path / "run" / "init"))
    assert saved["strategy"] == "mirrored" and saved["devices"] == ["/cpu:0"]
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")).endswith("ckpt-1")


def test_cli_without_tf_config_is_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--stage", "init", "--checkpoint_dir",
         str(tmp_path / "run"), "--hr_dir", str(REPO / "data" / "sample"), "--strategy",
         "multi_worker"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "needs the TF_CONFIG environment variable" in errors[0]


# ------------------------------------------------------------------------- fresh processes


def _fresh_run(mode, image_dir, out, steps):
    """Runs `python -m tests.distributed_run MODE ...`; returns its stdout (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.distributed_run", mode, str(image_dir), str(out), str(steps)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_trains_like_one_device(tmp_path, image_dir):
    out = tmp_path / "out"
    _fresh_run("mirrored", image_dir, out, 3)
    # Replica 0 and replica 1 together get exactly the global batch, in order.
    np.testing.assert_array_equal(np.load(out / "batches.npy"), _global_batches(image_dir))
    assert_same_training(str(out / "default"), str(out / "mirrored"), steps=3)


@pytest.mark.slow
def test_jit_compile_needs_gpu_replicas_and_runs_on_one_replica(tmp_path, image_dir):
    out = tmp_path / "run"
    assert _fresh_run("xla", image_dir, out, 2).splitlines()[0] == (
        "error: --jit_compile with 2 replicas needs every replica on a GPU (XLA all-reduces "
        "between GPUs only), got /job:localhost/replica:0/task:0/device:CPU:0, "
        "/job:localhost/replica:0/task:0/device:CPU:1")
    assert [r["step"] for r in _log(str(out), "init")] == [1, 2]
    assert trainer.read_stage_config(str(out / "init"))["jit_compile"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_cluster(image_dir, run_dir, steps, tmp_path, batches=False):
    """Runs 2 workers of a fresh 127.0.0.1 cluster to `steps` steps of both stages.

    Returns:
      list of the workers' stdout. Every worker process is ended before this returns.
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    try:
        for index in range(2):
            scratch = tmp_path / f"tmp{index}"  # where tempfile puts the non-chief's saves
            scratch.mkdir(exist_ok=True)
            env = dict(os.environ, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            args = [sys.executable, "-m", "tests.distributed_run", "worker", str(image_dir),
                    str(run_dir), str(steps)]
            if batches:
                args.append(str(tmp_path / f"batches{index}.npy"))
            workers.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
        outputs = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=TIMEOUT)
            assert worker.returncode == 0, stderr[-3000:]
            outputs.append(stdout)
        return outputs
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()


@pytest.mark.slow
def test_workers_that_disagree_stop_with_one_error_line(tmp_path, image_dir):
    """Worker 1 sees one image less than the chief: train.py stops on both before training."""
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for path in sorted(image_dir.iterdir())[:-1]:
        (fewer / path.name).symlink_to(path)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    try:
        for index, hr_dir in enumerate((image_dir, fewer)):
            env = dict(os.environ, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            workers.append(subprocess.Popen(
                [sys.executable, str(REPO / "train.py"), "--stage", "init", "--strategy",
                 "multi_worker", "--checkpoint_dir", str(tmp_path / f"run{index}"), "--hr_dir",
                 str(hr_dir), "--crop_size", "32", "--batch_size", "2", "--steps", "2",
                 "--precision", "float32"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        results = [(w.communicate(timeout=TIMEOUT)[1], w.returncode) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for stderr, code in results:
        assert code == 2, stderr[-3000:]
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, stderr[-3000:]
        assert errors[0].startswith("error: the workers disagree on (step, total steps, images, "
                                    "weight sums): [(0.0, 2.0, 5.0, ")
    assert not tf.train.latest_checkpoint(str(tmp_path / "run0" / "init"))  # nothing trained


@pytest.mark.slow
def test_two_worker_cluster_trains_resumes_and_matches_one_device(tmp_path, image_dir):
    run = tmp_path / "run"
    for steps in (2, 4):  # 4: both workers resume from the chief's checkpoints of step 2
        outputs = _run_cluster(image_dir, run, steps, tmp_path, batches=steps == 2)
        assert all(f"steps {steps} {steps}" in out for out in outputs), outputs
        for stage in ("init", "gan"):
            assert tf.train.latest_checkpoint(str(run / stage)).endswith(f"ckpt-{steps}")
            for name in ("generator.keras", "sample_x4.png", "config.json", "log.jsonl"):
                assert (run / stage / name).is_file()
        # Only the chief wrote: the run holds its files only, the scratch dirs are gone.
        assert sorted(os.listdir(run)) == ["gan", "init", "logs", trainer.SCAN_CACHE_FILE]
        assert os.listdir(tmp_path / "tmp0") == [] and os.listdir(tmp_path / "tmp1") == []
        if steps == 2:
            # Worker 0 (replica 0) and worker 1 (replica 1) together read the global batches.
            local = [np.load(tmp_path / f"batches{i}.npy") for i in range(2)]
            np.testing.assert_array_equal(np.concatenate(local, axis=1),
                                          _global_batches(image_dir))

    # The same schedule on one device, without interruption in stage gan: init to 2, gan from
    # that init to 4, then init resumed to 4.
    reference = str(tmp_path / "reference")
    for stage, steps in (("init", 2), ("gan", 4), ("init", 4)):
        keras.utils.set_random_seed(0)
        trainer.Trainer(distributed_run.tiny_config(str(image_dir), reference, stage, steps,
                                                    distributed_run.CLUSTER_GAN_UPDATE),
                        strategy=tf.distribute.get_strategy()).train()
    assert_same_training(reference, str(run), steps=4)


@pytest.mark.slow
def test_mirrored_alternating_step_equals_two_plain_tape_steps(tmp_path, image_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tests.distributed_run", "alternating", str(image_dir),
         str(tmp_path), "2"], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "alternating.npz") as saved:
        assert_matches_reference(dict(saved), Recipe().learning_rate, steps=2)
