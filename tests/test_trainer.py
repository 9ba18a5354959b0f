"""Training stages: learning, init -> gan handoff, checkpoints, resume, errors, tracing."""

import dataclasses
import json
import os
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import data, trainer
from srgan_tf.config import TrainConfig
from srgan_tf.loading import load_generator
from tests import distributed_run

from tests.conftest import REPO, write_images


def _config(tmp_path, image_dir, recipe, stage, steps, **kwargs):
    kwargs.setdefault("vgg_weights", "none")
    return TrainConfig(stage=stage, checkpoint_dir=str(tmp_path / "run"), hr_dir=str(image_dir),
                       recipe=recipe, steps=steps, save_every=2, summary_every=1, image_every=2,
                       **kwargs).validate()


def _trainer(config, vgg=None):
    keras.utils.set_random_seed(config.seed)
    return trainer.Trainer(config, vgg=vgg)


def test_init_steps_reduce_mse_on_a_fixed_batch(tmp_path, image_dir, tiny_recipe):
    t = _trainer(_config(tmp_path, image_dir, tiny_recipe.__class__(
        **{**tiny_recipe.__dict__, "learning_rate": 1e-3}), "init", 1))
    lr, hr = t.data.fixed_batch(2)
    step = t.step_function()
    losses = [float(step(lr, hr)["mse"]) for _ in range(30)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


def test_gan_step_moves_both_networks_and_reports_every_term(tmp_path, image_dir, tiny_recipe,
                                                             vgg_random):
    t = _trainer(_config(tmp_path, image_dir, tiny_recipe, "gan", 1, from_scratch=True),
                 vgg=vgg_random)
    lr, hr = t.data.fixed_batch(2)
    g_before = [v.numpy() for v in t.generator.trainable_variables]
    d_before = [v.numpy() for v in t.discriminator.trainable_variables]
    out = {k: float(v) for k, v in t.step_function()(lr, hr).items()}
    assert set(out) == {"g_loss", "d_loss", "mse", "vgg", "adv", "d_real", "d_fake",
                        trainer.GRADS_BAD}
    assert out.pop(trainer.GRADS_BAD) == 0
    assert all(np.isfinite(list(out.values())))
    r = tiny_recipe
    assert out["g_loss"] == pytest.approx(r.pixel_weight * out["mse"] + r.perceptual_weight
                                          * out["vgg"] + r.adversarial_weight * out["adv"],
                                          rel=1e-5)
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(g_before, t.generator.trainable_variables) if a.ndim == 4)
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(d_before, t.discriminator.trainable_variables) if a.ndim == 4)
    assert t.vgg.trainable_variables == []


@pytest.mark.parametrize("freeze", [False, True])
def test_gan_freeze_bn_keeps_the_generator_statistics(tmp_path, image_dir, tiny_recipe,
                                                      vgg_random, freeze):
    recipe = tiny_recipe.__class__(**{**tiny_recipe.__dict__, "gan_freeze_bn": freeze})
    t = _trainer(_config(tmp_path, image_dir, recipe, "gan", 1, from_scratch=True),
                 vgg=vgg_random)
    lr, hr = t.data.fixed_batch(2)
    moving = [v for v in t.generator.non_trainable_variables if "moving" in v.path]
    gammas = [v for v in t.generator.trainable_variables if v.path.endswith("gamma")]
    d_moving = [v for v in t.discriminator.non_trainable_variables if "moving" in v.path]
    assert moving and gammas and d_moving
    before = [v.numpy() for v in moving + gammas]
    d_before = [v.numpy() for v in d_moving]
    t.step_function()(lr, hr)
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before, moving + gammas)]
    assert all(changed[len(moving):])  # gamma and beta train either way
    assert not any(changed[:len(moving)]) if freeze else all(changed[:len(moving)])
    # The discriminator keeps batch statistics.
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(d_before, d_moving))


@pytest.mark.parametrize("freeze", [False, True])
def test_init_freeze_bn_keeps_the_generator_statistics(tmp_path, image_dir, tiny_recipe, freeze):
    recipe = tiny_recipe.__class__(**{**tiny_recipe.__dict__, "init_freeze_bn": freeze})
    t = _trainer(_config(tmp_path, image_dir, recipe, "init", 1))
    lr, hr = t.data.fixed_batch(2)
    moving = [v for v in t.generator.non_trainable_variables if "moving" in v.path]
    gammas = [v for v in t.generator.trainable_variables if v.path.endswith("gamma")]
    assert moving and gammas
    before = [v.numpy() for v in moving + gammas]
    t.step_function()(lr, hr)
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before, moving + gammas)]
    assert all(changed[len(moving):])  # gamma and beta train either way
    assert not any(changed[:len(moving)]) if freeze else all(changed[:len(moving)])


def test_step_functions_trace_once(tmp_path, image_dir, tiny_recipe, vgg_random):
    for stage in ("init", "gan"):
        t = _trainer(_config(tmp_path, image_dir, tiny_recipe, stage, 1, from_scratch=True),
                     vgg=vgg_random)
        step = t.step_function()
        for lr, hr in t.data.dataset().take(3):
            step(lr, hr)
        assert step.experimental_get_tracing_count() == 1


def test_init_then_gan_handoff_and_outputs(tmp_path, image_dir, tiny_recipe, vgg_random):
    init = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 3))
    init.train()
    run = tmp_path / "run"
    assert tf.train.latest_checkpoint(str(run / "init")).endswith("ckpt-3")
    for name in ("generator.keras", "sample_x4.png", "config.json"):
        assert (run / "init" / name).is_file()
    sample = tf.io.decode_png(tf.io.read_file(str(run / "init" / "sample_x4.png")))
    assert sample.shape == (32, 96, 3)  # bicubic | SR | HR
    init_weights = [v.numpy() for v in init.generator.variables]

    gan = _trainer(_config(tmp_path, image_dir, tiny_recipe, "gan", 2), vgg=vgg_random)
    for a, v in zip(init_weights, gan.generator.variables):
        np.testing.assert_array_equal(a, v.numpy())  # gan starts from the init generator
    logs = gan.train()
    assert np.isfinite(logs["g_loss"]) and np.isfinite(logs["d_loss"])
    g = keras.models.load_model(str(run / "gan" / "generator.keras"))
    x = tf.random.uniform([1, 5, 7, 3], -1, 1)
    np.testing.assert_array_equal(g(x).numpy(), gan.generator(x).numpy())
    np.testing.assert_array_equal(load_generator(str(run))(x).numpy(), g(x).numpy())


def test_rerun_resumes_and_a_finished_stage_does_nothing(tmp_path, image_dir, tiny_recipe):
    first = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 4))
    first.train()
    weights = [v.numpy() for v in first.generator.variables]
    again = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 4))
    assert int(again.step.numpy()) == 4
    for a, v in zip(weights, again.generator.variables):
        np.testing.assert_array_equal(a, v.numpy())
    assert again.train() == {}
    more = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 6))
    more.train()
    assert int(more.step.numpy()) == 6
    assert int(more.g_optimizer.iterations.numpy()) == 6
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")).endswith("ckpt-6")


@pytest.mark.parametrize("degradation", ["bicubic", "realistic", "jpeg:40"])
def test_interrupted_run_continues_where_it_stopped(tmp_path, image_dir, tiny_recipe,
                                                    degradation):
    def run(folder, steps):
        config = _config(tmp_path / folder, image_dir, tiny_recipe, "init", steps,
                         degradation=degradation)
        assert config.degradation == degradation
        return _trainer(config)

    straight = run("a", 4)
    straight.train()
    half = run("b", 2)
    half.train()
    rest = run("b", 4)
    rest.train()
    for a, b in zip(straight.generator.variables, rest.generator.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_gan_learning_rate_decays_every_decay_every_epochs(tmp_path, image_dir, tiny_recipe,
                                                           vgg_random):
    recipe = tiny_recipe.__class__(**{**tiny_recipe.__dict__, "decay_every": 1})
    t = _trainer(_config(tmp_path, image_dir, recipe, "gan", 4, from_scratch=True,
                         crops_per_image=1), vgg=vgg_random)
    assert t.steps_per_epoch == 3  # 6 images, batch 2
    rates = []
    lr, hr = t.data.fixed_batch(2)
    step = t.step_function()
    for _ in range(4):
        rates.append(t.learning_rate())
        step(lr, hr)
    np.testing.assert_allclose(rates, [1e-4, 1e-4, 1e-4, 1e-5], rtol=1e-5)


def test_gan_without_init_checkpoint_is_a_clear_error(tmp_path, image_dir, tiny_recipe):
    with pytest.raises(FileNotFoundError, match="--stage gan needs init weights.*--from_scratch"):
        trainer.Trainer(_config(tmp_path, image_dir, tiny_recipe, "gan", 2))


def test_summaries_are_written(tmp_path, image_dir, tiny_recipe):
    _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 2)).train()
    logs = tmp_path / "run" / "logs" / "init"
    events = [f for f in os.listdir(logs) if f.startswith("events")]
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(logs / events[0])):
        tags |= {v.tag for v in event.summary.value}
    assert {"loss/mse", "learning_rate", "steps_per_sec", "samples/bicubic_sr_hr"} <= tags


def test_empty_folder_is_a_clear_error(tmp_path, tiny_recipe):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    config = _config(tmp_path, tmp_path / "empty", tiny_recipe, "init", 1)
    with pytest.raises(ValueError, match="no usable training images in .*empty"):
        trainer.Trainer(config)


def test_data_module_resume_matches_trainer_steps(image_dir, tiny_recipe):
    files = data.scan_images(data.list_images(str(image_dir)), 32)[0]
    assert data.TrainingData(files, 32, 2).steps_per_epoch == 3


@pytest.mark.slow
def test_time_budget_stops_the_stage_and_counts_over_reruns(tmp_path, image_dir, tiny_recipe):
    config = _config(tmp_path, image_dir, tiny_recipe, "init", 10_000, max_minutes=0.05)
    first = _trainer(config)
    first.train()
    steps = int(first.step.numpy())
    assert 0 < steps < 10_000
    assert float(first.train_seconds.numpy()) >= 3.0
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")).endswith(f"ckpt-{steps}")
    again = _trainer(config)
    assert again.train() == {} and int(again.step.numpy()) == steps


def test_log_file_and_evaluator(tmp_path, image_dir, tiny_recipe):
    import json
    calls = []

    def evaluator(generator):
        calls.append(generator)
        return {"psnr": 20.0 + len(calls)}

    config = _config(tmp_path, image_dir, tiny_recipe, "init", 4).__class__(
        **{**_config(tmp_path, image_dir, tiny_recipe, "init", 4).__dict__, "eval_every": 2})
    keras.utils.set_random_seed(0)
    trainer.Trainer(config, evaluator=evaluator).train()
    records = [json.loads(line) for line in
               open(tmp_path / "run" / "init" / "log.jsonl", encoding="utf-8")]
    assert [r["step"] for r in records if "mse" in r] == [1, 2, 3, 4]
    assert [(r["step"], r["val_psnr"]) for r in records if "val_psnr" in r] == \
        [(0, 21.0), (2, 22.0), (4, 23.0)]
    assert all(r["steps_per_sec"] > 0 for r in records if "mse" in r)


def test_resume_uses_the_learning_rate_of_the_current_flags(tmp_path, image_dir, tiny_recipe):
    import dataclasses
    _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 2)).train()
    lower = dataclasses.replace(tiny_recipe, learning_rate=2e-5)
    resumed = _trainer(_config(tmp_path, image_dir, lower, "init", 4))
    assert int(resumed.step.numpy()) == 2
    assert resumed.learning_rate() == pytest.approx(2e-5)


@pytest.mark.parametrize("stage, terms", [
    ("init", "mse"), pytest.param("gan", "g_loss, mse, adv, d_loss", marks=pytest.mark.slow)])
def test_nan_stops_the_run_without_saving_the_bad_state(tmp_path, image_dir, tiny_recipe,
                                                        vgg_random, stage, terms):
    import dataclasses
    config = dataclasses.replace(_config(tmp_path, image_dir, tiny_recipe, stage, 6,
                                         from_scratch=True), debug_nan_step=3)
    with pytest.raises(trainer.NonFiniteLossError) as caught:
        _trainer(config, vgg=vgg_random).train()
    # The terms a NaN HR batch must make non-finite; others (vgg, d_real) depend on how the CPU's
    # ReLU and max-pool kernels treat NaN, and may be named too.
    named = re.match(r"step 3: non-finite (.*?) \(", str(caught.value))
    assert named and set(terms.split(", ")) <= set(named.group(1).split(", ")), str(caught.value)
    assert str(caught.value).endswith(str(tmp_path / "run" / stage / "ckpt-2"))
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / stage))
    assert latest.endswith("ckpt-2")
    reader = tf.train.load_checkpoint(latest)
    values = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
              if name.startswith(("generator/", "discriminator/"))]
    assert values and all(np.isfinite(v).all() for v in values)


def test_a_nonfinite_gradient_with_a_finite_loss_stops_the_run(tmp_path, image_dir, tiny_recipe,
                                                               monkeypatch):
    from srgan_tf import losses

    @tf.custom_gradient
    def nan_gradient(x):
        return tf.identity(x), lambda dy: dy * float("nan")

    pixel_loss = losses.pixel_loss
    monkeypatch.setattr(losses, "pixel_loss", lambda hr, sr: pixel_loss(hr, nan_gradient(sr)))
    with pytest.raises(trainer.NonFiniteLossError,
                       match=r"step 1: non-finite gradients \(mse=[0-9.]+\); nothing was saved"):
        _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 2)).train()
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")) is None


def test_a_failed_checkpoint_write_is_clear_and_keeps_the_previous_one(tmp_path, image_dir,
                                                                        tiny_recipe, monkeypatch):
    import errno
    write = tf.train.Checkpoint._write

    def disk_full(self, prefix, options=None, **kwargs):
        if prefix.endswith("ckpt-4"):
            with open(prefix + ".data-00000-of-00001", "wb") as f:
                f.write(b"\0" * 100)  # a partial file, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, prefix, options=options, **kwargs)

    monkeypatch.setattr(tf.train.Checkpoint, "_write", disk_full)
    with pytest.raises(trainer.CheckpointWriteError,
                       match=r"cannot write checkpoint 4 .*No space left on device.*ckpt-2"):
        _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 6)).train()
    monkeypatch.setattr(tf.train.Checkpoint, "_write", write)
    resumed = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 6))
    assert int(resumed.step.numpy()) == 2
    resumed.train()
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")).endswith("ckpt-6")


@pytest.mark.parametrize("failing", ["generator.keras", "sample_x4.png"])
def test_a_failed_final_write_keeps_the_old_file(tmp_path, image_dir, tiny_recipe, monkeypatch,
                                                failing):
    import errno
    _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 2)).train()
    stage = tmp_path / "run" / "init"
    before = {name: (stage / name).read_bytes() for name in ("generator.keras", "sample_x4.png")}
    more = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 3))

    def half_then_full(path):  # the file is half written when the disk fills up
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "generator.keras":
        save = more.generator.save
        monkeypatch.setattr(more.generator, "save",
                            lambda path, **kw: (save(path, **kw), half_then_full(path)))
    else:
        write_file = tf.io.write_file
        monkeypatch.setattr(tf.io, "write_file",
                            lambda path, data: (write_file(path, data), half_then_full(path)))
    with pytest.raises(OSError, match="No space left on device"):
        more.train()
    assert (stage / failing).read_bytes() == before[failing]
    assert not [name for name in os.listdir(stage) if "tmp" in name]


def assert_matches_reference(result, learning_rate, steps):
    """Checks a `distributed_run.alternating_against_reference` result.

    Tolerances: the compiled step and the eager reference round differently (~1e-7), and Adam
    turns that into an opposite update (at most learning_rate per step) of the few weights whose
    gradient is ~0. Measured over 2 steps: losses 2e-5 relative, weights 1.9e-4 at most and 1e-7
    on average; the shared update instead differs by 2e-2, 0.15 and 3e-4.
    """
    loss_rel, weight_max, weight_mean = distributed_run.reference_differences(result)
    assert loss_rel <= 1e-4, loss_rel
    assert weight_max <= 2 * learning_rate * steps, weight_max
    assert weight_mean <= 1e-6, weight_mean


@pytest.mark.slow
def test_alternating_step_equals_two_plain_tape_steps(tmp_path, image_dir, tiny_recipe,
                                                      vgg_random):
    assert tiny_recipe.gan_update == "alternating"  # the default
    # The stream the tolerances were measured on (as tests/distributed_run.tiny_config pins it):
    # the tiny discriminator normalises 1x1 maps over 2 samples, so rounding grows with the data.
    t = _trainer(_config(tmp_path, image_dir, tiny_recipe, "gan", 2, from_scratch=True,
                         crops_per_image=1, augment="flip_rot90"), vgg=vgg_random)
    pairs = list(t.data.dataset().take(2))
    batches = ([lr.numpy() for lr, _ in pairs], [hr.numpy() for _, hr in pairs])
    assert_matches_reference(distributed_run.alternating_against_reference(t, batches),
                             tiny_recipe.learning_rate, steps=2)


@pytest.mark.slow
def test_gan_learning_rate_after_resume_follows_the_step_schedule(tmp_path, image_dir,
                                                                  tiny_recipe, vgg_random):
    import dataclasses
    recipe = dataclasses.replace(tiny_recipe, decay_steps=2, gan_steps=4)  # as the paper preset
    first = _trainer(_config(tmp_path, image_dir, recipe, "gan", 3, from_scratch=True),
                     vgg=vgg_random)  # --steps 3: stops early, as if interrupted
    assert first.schedule()["decay_steps"] == 2
    first.train()
    resumed = _trainer(_config(tmp_path, image_dir, recipe, "gan", None), vgg=vgg_random)
    assert resumed.total_steps == 4 and int(resumed.step.numpy()) == 3
    # 3 updates done: one decay (after update 2), as in an uninterrupted run.
    assert resumed.learning_rate() == pytest.approx(1e-5, rel=1e-6)
    resumed.train()
    assert int(resumed.step.numpy()) == 4
    assert resumed.learning_rate() == pytest.approx(1e-6, rel=1e-6)  # 4 updates: two decays


def test_nonfinite_gradients_of_both_gan_updates_are_counted(tmp_path, image_dir, tiny_recipe,
                                                            vgg_random):
    t = _trainer(_config(tmp_path, image_dir, tiny_recipe, "gan", 1, from_scratch=True),
                 vgg=vgg_random)
    lr, hr = t.data.fixed_batch(2)
    out = t.step_function()(lr, hr * float("nan"))
    # Every gradient of the D step and of the G step holds a NaN, and each one is counted.
    assert float(out[trainer.GRADS_BAD]) == (len(t.generator.trainable_variables)
                                             + len(t.discriminator.trainable_variables))


# XLA (--jit_compile). Tolerances of "the same step", one step from the same weights on the same
# batch: XLA:CPU fuses and orders the float32 sums of convolutions and reductions differently from
# the oneDNN kernels, so the losses agree to rounding. Measured: 2e-7 relative for mse and g_loss,
# up to 5e-5 for the discriminator's terms (the tiny discriminator's BatchNorm normalises 1x1 maps
# over 2 samples, which amplifies rounding), hence 3e-4. Adam's first update is learning_rate x
# g / (|g| + epsilon), so a weight whose gradient is ~0 moves by up to 2 x learning_rate = 2e-4
# the other way when rounding flips the sign of g (measured in gan: 2.0e-4); on average the
# weights agree to 2e-11 (init) and 1.5e-7 (gan). A step that skipped an update or trained other
# weights would differ by ~learning_rate = 1e-4 on average, 100x XLA_WEIGHT_MEAN_ATOL.
# BatchNorm moving statistics move by 0.1 x each pass's batch statistics; the discriminator's
# are those of 1x1 maps over 2 samples, three passes per alternating gan step (HR, SR, SR again):
# measured 3.8e-4 (bn7/moving_mean), hence their own tolerance.
XLA_LOSS_RTOL = 3e-4
XLA_WEIGHT_ATOL = 2.5e-4
XLA_WEIGHT_MEAN_ATOL = 1e-6
XLA_STATS_ATOL = 1e-3


def _xla_recipe(tiny_recipe):
    # VGG up to block1_conv2 keeps the compiled program small; the step keeps every kind of op
    # (VGG, D, G, both Adams).
    return tiny_recipe.__class__(**{**tiny_recipe.__dict__, "vgg_layer": "block1_conv2"})


def _xla_call_ops(step_fn, lr, hr):
    """The nested function calls of the traced step that XLA must compile."""
    graph = step_fn.get_concrete_function(lr, hr).graph
    calls = [op for op in graph.get_operations() if op.type in ("PartitionedCall",
                                                                 "StatefulPartitionedCall")]
    return [op for op in calls if op.node_def.attr["_XlaMustCompile"].b]


@pytest.mark.parametrize("stage", ["init", pytest.param("gan", marks=pytest.mark.slow(
    reason="XLA compiles G, D and VGG forward and backward: minutes on 2 busy cores"))])
def test_jit_compile_step_matches_the_plain_step(tmp_path, image_dir, tiny_recipe, vgg_random,
                                                 stage):
    recipe = _xla_recipe(tiny_recipe)
    runs = {}
    for jit in (False, True):
        t = _trainer(_config(tmp_path / str(jit), image_dir, recipe, stage, 1, from_scratch=True,
                             jit_compile=jit), vgg=vgg_random)
        lr, hr = t.data.fixed_batch(2)
        step = t.step_function()
        assert len(_xla_call_ops(step, lr, hr)) == (1 if jit else 0)  # the flag reaches XLA
        logs = {k: float(v) for k, v in step(lr, hr).items()}
        models = [t.generator] + ([t.discriminator] if t.is_gan else [])
        runs[jit] = logs, {v.path.split("/", 1)[1]: v.numpy() for m in models for v in m.weights}
    (plain_logs, plain_weights), (xla_logs, xla_weights) = runs[False], runs[True]
    assert xla_logs.pop(trainer.GRADS_BAD) == plain_logs.pop(trainer.GRADS_BAD) == 0
    assert xla_logs == pytest.approx(plain_logs, rel=XLA_LOSS_RTOL)
    stats = [p for p in plain_weights if "/moving_" in p]
    for path in stats:
        np.testing.assert_allclose(xla_weights[path], plain_weights[path], rtol=0,
                                   atol=XLA_STATS_ATOL, err_msg=path)
    diffs = np.concatenate([np.abs(plain_weights[p] - xla_weights[p]).ravel()
                            for p in plain_weights if p not in stats])
    assert diffs.max() <= XLA_WEIGHT_ATOL and diffs.mean() <= XLA_WEIGHT_MEAN_ATOL, (
        diffs.max(), diffs.mean())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_jit_compile_trains_under_mixed_precision(tmp_path, image_dir, tiny_recipe, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        t = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 1, jit_compile=True))
        lr, hr = t.data.fixed_batch(2)
        before = [v.numpy() for v in t.generator.trainable_variables]
        step = t.step_function()
        out = {k: float(v) for k, v in step(lr, hr).items()}
        assert len(_xla_call_ops(step, lr, hr)) == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(out["mse"]) and out[trainer.GRADS_BAD] == 0
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(before, t.generator.trainable_variables))


def test_jit_compile_nan_still_stops_the_run(tmp_path, image_dir, tiny_recipe):
    t = _trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 6, debug_nan_step=3,
                         jit_compile=True))
    with pytest.raises(trainer.NonFiniteLossError, match=r"step 3: non-finite mse.*ckpt-2"):
        t.train()
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "init")).endswith("ckpt-2")


class _SlowData(data.TrainingData):
    """A stream whose every batch takes a second to arrive."""

    def distributed_dataset(self, strategy, start_step=0):
        for batch in super().distributed_dataset(strategy, start_step):
            time.sleep(1.0)
            yield batch


@pytest.mark.slow
def test_input_wait_is_logged_and_an_input_bound_run_warns_once(tmp_path, image_dir, tiny_recipe,
                                                                 caplog):
    config = _config(tmp_path, image_dir, tiny_recipe, "init", 5)
    files = data.scan_images(data.list_images(str(image_dir)), 32)[0]
    slow = _SlowData(files, 32, 2)
    keras.utils.set_random_seed(0)
    with caplog.at_level("WARNING"):
        trainer.Trainer(config, data=slow).train()
    records = [json.loads(line) for line in
               open(tmp_path / "run" / "init" / "log.jsonl", encoding="utf-8")]
    waits = [r["input_wait"] for r in records if "mse" in r]
    assert len(waits) == 5 and all(0.2 < w <= 1.0 for w in waits[1:])
    warnings = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert len(warnings) == 1
    assert all(remedy in warnings[0] for remedy in ("--store", "--cache", "--crops_per_image"))
    logs = tmp_path / "run" / "logs" / "init"
    event_file = str(logs / [f for f in os.listdir(logs) if f.startswith("events")][0])
    tags = {v.tag for event in tf.compat.v1.train.summary_iterator(event_file)
            for v in event.summary.value}
    assert "input_wait" in tags

@pytest.mark.slow
def test_fine_tune_starts_both_networks_from_files_and_trains(tmp_path, image_dir, tiny_recipe,
                                                              vgg_random):
    source = _trainer(_config(tmp_path / "a", image_dir, tiny_recipe, "gan", 2, from_scratch=True),
                      vgg=vgg_random)
    source.train()
    stage = tmp_path / "a" / "run" / "gan"
    assert (stage / "discriminator.keras").is_file()  # stage gan ships its discriminator too
    config = _config(tmp_path / "b", image_dir, tiny_recipe, "gan", 2,
                     init_from=str(stage / "generator.keras"),
                     init_discriminator=str(stage / "discriminator.keras"))
    tuned = _trainer(config, vgg=vgg_random)  # no init stage needed
    for model, name in ((tuned.generator, "generator"), (tuned.discriminator, "discriminator")):
        saved = keras.models.load_model(str(stage / f"{name}.keras"))
        for a, b in zip(saved.weights, model.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    before = [v.numpy() for v in tuned.generator.trainable_variables]
    tuned.train()
    assert any(not np.array_equal(a, v.numpy())
               for a, v in zip(before, tuned.generator.trainable_variables))
    # A rerun resumes from the stage's checkpoint, not from the file again.
    resumed = _trainer(config, vgg=vgg_random)
    for a, v in zip(tuned.generator.variables, resumed.generator.variables):
        np.testing.assert_array_equal(a.numpy(), v.numpy())


def test_fine_tune_init_stage_from_a_generator_file(tmp_path, image_dir, tiny_recipe):
    first = _trainer(_config(tmp_path / "a", image_dir, tiny_recipe, "init", 2))
    first.train()
    path = tmp_path / "a" / "run" / "init" / "generator.keras"
    tuned = _trainer(_config(tmp_path / "b", image_dir, tiny_recipe, "init", 1,
                             init_from=str(path)))
    for a, v in zip(first.generator.variables, tuned.generator.variables):
        np.testing.assert_array_equal(a.numpy(), v.numpy())


def test_fine_tune_refuses_another_architecture(tmp_path, image_dir, tiny_recipe, vgg_random):
    # The shipped SRResNet is the full tensorlayer generator (16 blocks, 64 features).
    with pytest.raises(ValueError, match=r"--init_from .*srresnet_x4.keras is a Generator "
                                         r"\(num_feat 64, num_block 16.*this run trains a Generator "
                                         r"\(num_feat 8, num_block 1"):
        trainer.Trainer(_config(tmp_path, image_dir, tiny_recipe, "init", 1, init_from="srresnet"))
    with pytest.raises(FileNotFoundError, match="--init_from must be srresnet, srgan, srresnet-real, an existing "
                                                ".keras file, got 'nope.keras'"):
        _config(tmp_path, image_dir, tiny_recipe, "init", 1, init_from="nope.keras")
    with pytest.raises(ValueError, match="--init_discriminator needs --stage gan"):
        _config(tmp_path, image_dir, tiny_recipe, "init", 1,
                init_discriminator=str(REPO / "weights" / "srgan_x4.keras"))
    generator = str(REPO / "weights" / "srgan_x4.keras")
    config = _config(tmp_path / "c", image_dir, tiny_recipe, "gan", 1, init_discriminator=generator,
                     from_scratch=True)
    with pytest.raises(ValueError, match="--init_discriminator .* is a Generator"):
        trainer.Trainer(config, vgg=vgg_random)


def test_discriminator_of_another_crop_is_refused_in_one_line(tmp_path, tiny_recipe, vgg_random):
    # The discriminator's dense layer reads its flattened last feature map (6 stride-2 convs:
    # 1x1 at crop 64, 2x2 at 128): it fixes the crop.
    image_dir = tmp_path / "hr"
    write_images(image_dir, [(128, 128), (128, 136)])
    path = str(tmp_path / "discriminator.keras")
    at_64 = _trainer(_config(tmp_path / "a", image_dir, dataclasses.replace(
        tiny_recipe, crop_size=64, vgg_input_size=64), "gan", 0, from_scratch=True), vgg=vgg_random)
    at_64.discriminator.save(path)
    config = _config(tmp_path / "b", image_dir, dataclasses.replace(
        tiny_recipe, crop_size=128, vgg_input_size=128), "gan", 0, from_scratch=True,
        init_discriminator=path)
    with pytest.raises(ValueError, match=r"--init_discriminator .*discriminator.keras: .* has "
                                         r"shape .*, this run's .*train with the --crop_size it "
                                         r"was trained with") as error:
        trainer.Trainer(config, vgg=vgg_random)
    assert "\n" not in str(error.value)
