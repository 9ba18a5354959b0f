"""A prepared check of a training machine: device, train steps with and without XLA, the input
pipeline, a short real training run, export and one SavedModel call; everything in one JSON.

Parts, in this order (the functional ones first, the timings then fill the time left):

1. the device (`bench.device_info`); without a GPU the check runs on the CPU at small shapes and
   says so (`gpu: false`, `small_shapes: true`, `note`);
2. `python train.py --stage init` for `train_steps` steps on data/sample, in its own process; the
   loss must fall (first against last logged mse of RUN/init/log.jsonl);
3. `python export.py` of that run, then one call of the SavedModel's `serving_default`;
4. `python -m srgan_tf.bench --sections pipeline --quick --output_json FILE`, in its own process; its
   `pipeline` object is copied, or an error is recorded;
5. init and gan train steps of both presets in float32, mixed_bfloat16 and mixed_float16, each
   without and with `--jit_compile` (`bench.measure_step`; on a CPU with smaller networks,
   `CPU_OVERRIDES`), until `budget_minutes` have passed
   since the start; those left are recorded as skipped.

`python -m srgan_tf.gpu_check` (and scripts/gpu_check.sh) runs the CLI, srgan_tf/cli/gpu_check.py.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from srgan_tf import bench, errors, files
from srgan_tf.config import PRESETS, SCALE
from srgan_tf.serving.module import FLOAT_INPUT, FLOAT_OUTPUT, SIGNATURE_FLOAT

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STAGES = ("init", "gan")
CPU_NOTE = ("no GPU found: ran on the CPU at small shapes (step timings with smaller "
            "networks)")
# The step timings' networks on a CPU, so that all 24 fit the budget there: VGG19 on the HR crop
# itself (a 224x224 VGG pass per image would be most of a small gan step), 4 residual blocks
# and a discriminator of width 16 (the tensorlayer one's 2048-channel 4x4 convs hold 33M
# weights whatever the input size). Tracing and compiling are most of each timing there.
CPU_OVERRIDES = (("vgg_input_size", 0), ("num_block", 4), ("disc_feat", 16))


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    """What `run_check` does. Shapes of None take the GPU or the CPU default (see `resolved`)."""

    output: str  # the JSON file written
    work_dir: Optional[str] = None  # run directory of the training and export (default: a temp dir)
    hr_dir: str = os.path.join(bench.ROOT, "data", "sample")
    train_steps: int = 200
    train_crop: Optional[int] = None  # GPU 96, CPU 48
    train_batch: Optional[int] = None  # GPU 16, CPU 4
    step_batch: Optional[int] = None  # GPU 16 (the bench's), CPU 2
    step_lr_patch: Optional[int] = None  # GPU 24 (the bench's), CPU 8
    warmup: Optional[int] = None  # GPU 2, CPU 1
    repeats: Optional[int] = None  # GPU 10, CPU 3
    stages: Tuple[str, ...] = STAGES
    presets: Tuple[str, ...] = PRESETS
    precisions: Tuple[str, ...] = PRECISIONS
    # Train-step timings only. None: none on a GPU; on a CPU, CPU_OVERRIDES.
    recipe_overrides: Optional[Tuple[Tuple[str, object], ...]] = None
    budget_minutes: float = 7.5  # the step timings stop being started after this
    pipeline_timeout: float = 150.0  # seconds for `bench --sections pipeline`
    process_timeout: float = 600.0  # seconds for the training and the export processes
    gpu: Optional[bool] = None  # None: whether TensorFlow sees a GPU

    def resolved(self):
        """Returns a copy with the GPU or CPU defaults filled in and `gpu` decided."""
        gpu = bool(tf.config.list_physical_devices("GPU")) if self.gpu is None else self.gpu
        defaults = dict(train_crop=96, train_batch=16, step_batch=16, step_lr_patch=24,
                        warmup=2, repeats=10, recipe_overrides=()) if gpu else dict(
                            train_crop=48, train_batch=4, step_batch=2, step_lr_patch=8,
                            warmup=1, repeats=3, recipe_overrides=CPU_OVERRIDES)
        values = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return dataclasses.replace(self, gpu=gpu, **values)

    def validate(self):
        """Raises ValueError / FileNotFoundError naming the bad flag; returns self."""
        if not os.path.isdir(self.hr_dir):
            raise FileNotFoundError(f"--hr_dir {self.hr_dir!r} is not a directory")
        if self.train_steps < 2:
            raise ValueError(f"--train_steps must be at least 2, got {self.train_steps}")
        if self.budget_minutes <= 0:
            raise ValueError(f"--budget_minutes must be positive, got {self.budget_minutes}")
        for name, given, allowed in (("stages", self.stages, STAGES),
                                     ("presets", self.presets, PRESETS),
                                     ("precisions", self.precisions, PRECISIONS)):
            if not given or not set(given) <= set(allowed):
                raise ValueError(f"--{name} must be a comma list of {', '.join(allowed)}, got "
                                 f"{','.join(given)!r}")
        return self


def _run(args, timeout):
    """Runs `python ARGS` from the repository root; returns (exit code, stdout, stderr, seconds).

    A process still running after `timeout` seconds is killed (exit code None).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.pathsep.join(
        p for p in (bench.ROOT, os.environ.get("PYTHONPATH")) if p))
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *args], cwd=bench.ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        code = None
        out, err = (v.decode(errors="replace") if isinstance(v, bytes) else (v or "")
                    for v in (e.stdout, e.stderr))
    return code, out, err, time.perf_counter() - start


def _failure(code, err, timeout):
    """One line saying why a process failed: its last error line, or the timeout."""
    if code is None:
        return f"timed out after {timeout:.0f} s"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return f"exit code {code}: {lines[-1] if lines else 'no output'}"


def loss_trend(log_file, key="mse"):
    """First and last logged value of `key` in a RUN/<stage>/log.jsonl.

    Returns:
      dict: first, last (floats), first_step, last_step, records (how many carried `key`),
      falling (last < first).
    Raises:
      ValueError: when fewer than two records carry `key`.
    """
    with open(log_file, encoding="utf-8") as f:
        records = [r for r in map(json.loads, f) if key in r]
    if len(records) < 2:
        raise ValueError(f"{log_file} has {len(records)} records with {key!r}, need 2")
    first, last = records[0], records[-1]
    return {"first": first[key], "last": last[key], "first_step": first["step"],
            "last_step": last["step"], "records": len(records),
            "falling": bool(last[key] < first[key])}


def check_training(config, run_dir):
    """Part 2: `train.py --stage init` for `train_steps` steps; the mse must fall."""
    args = ["train.py", "--stage", "init", "--hr_dir", config.hr_dir, "--checkpoint_dir",
            run_dir, "--steps", str(config.train_steps), "--crop_size", str(config.train_crop),
            "--batch_size", str(config.train_batch), "--summary_every", "1",
            "--save_every", str(config.train_steps), "--image_every", str(config.train_steps)]
    code, _, err, seconds = _run(args, config.process_timeout)
    result = {"command": "python " + " ".join(args), "seconds": seconds, "ok": False}
    if code != 0:
        result["error"] = _failure(code, err, config.process_timeout)
        return result
    trend = loss_trend(os.path.join(run_dir, "init", "log.jsonl"))
    result.update(mse=trend, ok=trend["falling"], steps_per_s=config.train_steps / seconds)
    if not trend["falling"]:
        result["error"] = (f"mse did not fall: {trend['first']:.4g} at step {trend['first_step']}"
                           f", {trend['last']:.4g} at step {trend['last_step']}")
    return result


def check_export(config, run_dir):
    """Part 3: `export.py` of the run, then one `serving_default` call on a 32x32 image."""
    export_dir = os.path.join(run_dir, "export")
    args = ["export.py", "--checkpoint_dir", run_dir, "--export_dir", export_dir]
    code, out, err, seconds = _run(args, config.process_timeout)
    result = {"command": "python " + " ".join(args), "seconds": seconds, "ok": False}
    if code != 0:
        result["error"] = _failure(code, err, config.process_timeout)
        return result
    path = out.strip().splitlines()[-1]
    start = time.perf_counter()
    serve = tf.saved_model.load(path).signatures[SIGNATURE_FLOAT]
    image = np.random.default_rng(0).uniform(0, 1, [1, 32, 32, 3]).astype(np.float32)
    sr = serve(**{FLOAT_INPUT: tf.constant(image)})[FLOAT_OUTPUT].numpy()
    expected = (1, SCALE * 32, SCALE * 32, 3)
    result.update(path=path, call_seconds=time.perf_counter() - start,
                  output_shape=list(sr.shape),
                  ok=sr.shape == expected and bool(np.isfinite(sr).all()))
    if not result["ok"]:
        result["error"] = f"{SIGNATURE_FLOAT} returned {sr.shape}, expected {expected}"
    return result


def check_pipeline(config, tmp):
    """Part 4: `python -m srgan_tf.bench --sections pipeline`; returns its `pipeline` object."""
    output = os.path.join(tmp, "pipeline.json")
    args = ["-m", "srgan_tf.bench", "--sections", "pipeline", "--quick", "--output_json", output]
    code, _, err, seconds = _run(args, config.pipeline_timeout)
    if code != 0:
        return {"error": _failure(code, err, config.pipeline_timeout), "seconds": seconds}
    with open(output, encoding="utf-8") as f:
        figures = json.load(f)
    if not isinstance(figures.get("pipeline"), dict):
        return {"error": f"python {' '.join(args)} wrote no 'pipeline' object", "seconds": seconds}
    return {**figures["pipeline"], "seconds": seconds}


def time_steps(config, deadline):
    """Part 5: {stage: {preset: {precision: {"plain"|"xla": bench.measure_step dict}}}}.

    A measurement that fails records {"error": ...}; one not started before `deadline`
    (time.perf_counter()) records {"skipped": ...}.
    """
    timing = bench.BenchConfig(presets=config.presets, precisions=config.precisions,
                               batch_size=config.step_batch, lr_patch=config.step_lr_patch,
                               hr_dir=config.hr_dir, warmup=config.warmup,
                               repeats=config.repeats, recipe_overrides=config.recipe_overrides)
    steps = {}
    for stage in config.stages:
        for preset in config.presets:
            for policy in config.precisions:
                for jit in (False, True):
                    key = "xla" if jit else "plain"
                    row = steps.setdefault(stage, {}).setdefault(preset, {}).setdefault(policy, {})
                    if time.perf_counter() > deadline:
                        row[key] = {"skipped": f"--budget_minutes {config.budget_minutes:g} "
                                               "reached"}
                        continue
                    try:
                        row[key] = bench.measure_step(timing, stage, preset, policy, jit)
                    except (tf.errors.OpError, ValueError) as e:
                        row[key] = {"error": errors.first_line(e)[:500]}
                        logging.error("%s step %s %s %s failed: %s", stage, preset, policy, key,
                                      row[key]["error"])
                if "ms" in row.get("plain", {}) and "ms" in row.get("xla", {}):
                    row["xla_speedup"] = row["plain"]["ms"] / row["xla"]["ms"]
    return steps


def run_check(config):
    """Runs every part (see the module docstring) and writes `config.output`.

    Returns:
      the dict written: device, gpu, small_shapes, note, system, settings, train, export,
      pipeline, steps, seconds, ok (training and export succeeded).
    """
    start = time.perf_counter()
    config = config.resolved().validate()
    deadline = start + 60.0 * config.budget_minutes
    info = bench.device_info()
    results = {"device": info["device"], "gpu": config.gpu, "small_shapes": not config.gpu,
               "note": None if config.gpu else CPU_NOTE, "system": info,
               "settings": {**dataclasses.asdict(config),
                            "recipe_overrides": dict(config.recipe_overrides)}}
    logging.info("gpu check on %s%s", info["device"], "" if config.gpu else f" ({CPU_NOTE})")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = config.work_dir or os.path.join(tmp, "run")
        results["train"] = check_training(config, run_dir)
        logging.info("training: %s", results["train"])
        if results["train"]["ok"] or os.path.exists(os.path.join(run_dir, "init")):
            results["export"] = check_export(config, run_dir)
        else:
            results["export"] = {"ok": False, "error": "no training run to export"}
        logging.info("export: %s", results["export"])
        results["pipeline"] = check_pipeline(config, tmp)
        logging.info("pipeline: %s", results["pipeline"])
    results["steps"] = time_steps(config, deadline)
    results["seconds"] = time.perf_counter() - start
    results["ok"] = bool(results["train"]["ok"] and results["export"]["ok"])
    files.write_json(results, config.output, indent=2)
    logging.info("wrote %s", config.output)
    return results


def _ms(m):
    """A step's time, or why there is none."""
    if "ms" in m:
        return f"{m['ms']:.1f} ms"
    return "skipped" if "skipped" in m else f"error: {m['error'][:60]}"


def format_report(results):
    """Returns the check's results as a few lines of text and one Markdown table of steps."""
    lines = [f"device: {results['device']}" + ("" if results["gpu"] else f" ({results['note']})")]
    train = results["train"]
    if "mse" in train:
        mse = train["mse"]
        lines.append(f"training: {train['command']}: mse {mse['first']:.4g} (step "
                     f"{mse['first_step']}) -> {mse['last']:.4g} (step {mse['last_step']}), "
                     f"{'falling' if mse['falling'] else 'NOT falling'}, {train['seconds']:.0f} s")
    else:
        lines.append(f"training: FAILED: {train.get('error')}")
    export = results["export"]
    lines.append(f"export: {export['path']}, {SIGNATURE_FLOAT} -> {export['output_shape']}"
                 if export["ok"] else f"export: FAILED: {export.get('error')}")
    pipeline = results["pipeline"]
    lines.append("pipeline: " + (f"error: {pipeline['error']}" if "error" in pipeline else
                                 ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in pipeline.items())))
    lines += ["", "| step | preset | precision | without XLA | with XLA | speed-up |",
              "| --- | --- | --- | --- | --- | --- |"]
    for stage, presets in results["steps"].items():
        for preset, policies in presets.items():
            for policy, row in policies.items():
                speedup = f"{row['xla_speedup']:.2f}x" if "xla_speedup" in row else ""
                lines.append(f"| {stage} | {preset} | {policy} | {_ms(row['plain'])} | "
                             f"{_ms(row['xla'])} | {speedup} |")
    lines += ["", f"{'OK' if results['ok'] else 'FAILED'} in {results['seconds']:.0f} s"]
    return "\n".join(lines)
