"""`run_benchmark`: every section in one process, into one results dict with its target checks."""

import dataclasses

import tensorflow as tf
from absl import logging

from srgan_tf.bench.ceilings import conv_gflops, device_info, matmul_gflops
from srgan_tf.bench.inference import measure_inference, measure_upscale
from srgan_tf.bench.pipeline import measure_pipeline
from srgan_tf.bench.settings import (BF16_SPEEDUP_TARGET, CEILING_REPEATS, COMPUTE_DTYPES,
                                     FILES_CROPS_TARGET, INFER_TARGET, REALISTIC_TARGET, RSS_TARGET_MB, STEP_TARGET,
                                     STORE_TARGET, XLA_SUFFIX)
from srgan_tf.bench.steps import measure_step


def run_benchmark(config):
    """Runs the sections of `config` in order and returns every figure.

    The keys of the `--output_json` file: device, cpu_features, matmul_gflops, conv_gflops
    ({compute dtype: GFLOP/s}), init_step_ms and gan_step_ms ({preset: {policy: ms}}; the gan
    step in the first of `gan_updates`, every mode in details["gan_step_by_update"]),
    init_step_xla_ms and gan_step_xla_ms (the same with `--jit_compile`), init_xla_speedup and
    gan_xla_speedup ({preset: {policy: ms without XLA / ms with XLA}}, when both were timed),
    pipeline (see `measure_pipeline`), pipeline_patches_per_s (its store rate), infer_ms
    ({size: {policy: ms}}), upscale_2048_peak_rss_mb (named
    after the default size; see `upscale` for the size used); null where a section was not run.
    `details` holds every measurement in full, and `targets` the ratios against their targets.
    """
    config.validate()
    info = device_info()
    logging.info("benchmark on %s (%s)", info["device"], ", ".join(info["cpu_features"]) or "-")
    dtypes = sorted({COMPUTE_DTYPES[p] for p in config.precisions},
                    key=list(COMPUTE_DTYPES.values()).index)
    results = {"device": info["device"], "cpu_features": info["cpu_features"],
               "matmul_gflops": None, "conv_gflops": None, "init_step_ms": None,
               "gan_step_ms": None, "init_step_xla_ms": None, "gan_step_xla_ms": None,
               "init_xla_speedup": None, "gan_xla_speedup": None, "pipeline": None,
               "pipeline_patches_per_s": None, "infer_ms": None,
               "upscale_2048_peak_rss_mb": None,
               "system": info, "settings": _settings(config), "details": {}}
    details = results["details"]
    sections = config.sections
    if "ceilings" in sections:
        # They are the denominators of every ratio and cheap: never fewer than CEILING_REPEATS.
        warmup, repeats = max(1, config.warmup), max(CEILING_REPEATS, config.repeats)
        results["matmul_gflops"] = {d: matmul_gflops(config.matmul_size, tf.as_dtype(d),
                                                     warmup, repeats)
                                    for d in dtypes}
        results["conv_gflops"], details["conv_lr_gflops"] = {}, {}
        for d in dtypes:
            for key, size in (("conv_gflops", config.conv_size),
                              ("conv_lr_gflops", config.lr_patch)):
                figures = results if key == "conv_gflops" else details
                figures[key][d] = conv_gflops(config.batch_size, size, config.conv_feat,
                                              tf.as_dtype(d), warmup, repeats)
            logging.info("ceilings %s: matmul %.0f, conv %.0f GFLOP/s", d,
                         results["matmul_gflops"][d], results["conv_gflops"][d])
    for stage in ("init", "gan"):
        if stage not in sections:
            continue
        modes = config.gan_updates if stage == "gan" else (None,)
        presets = config.resolved_gan_presets if stage == "gan" else config.presets
        for jit in config.jit_compile:
            key = f"{stage}_step{XLA_SUFFIX if jit else ''}"
            by_mode = {mode: {preset: {policy: measure_step(config, stage, preset, policy, jit,
                                                            mode)
                                       for policy in config.precisions}
                              for preset in presets} for mode in modes}
            steps = by_mode[modes[0]]
            details[key] = steps
            if stage == "gan":
                details[f"{key}_by_update"] = by_mode
            results[f"{key}_ms"] = {preset: {policy: m["ms"] for policy, m in row.items()}
                                    for preset, row in steps.items()}
        if len(config.jit_compile) == 2:
            plain, xla = results[f"{stage}_step_ms"], results[f"{stage}_step{XLA_SUFFIX}_ms"]
            results[f"{stage}_xla_speedup"] = {
                preset: {policy: plain[preset][policy] / ms for policy, ms in row.items()}
                for preset, row in xla.items()}
    if "pipeline" in sections:
        results["pipeline"] = measure_pipeline(config)
        results["pipeline_patches_per_s"] = results["pipeline"]["store"]
    if "inference" in sections:
        inference = {policy: measure_inference(config, policy) for policy in config.precisions}
        details["inference"] = inference
        results["infer_ms"] = {str(size): {policy: inference[policy][str(size)]["ms"]
                                           for policy in config.precisions}
                               for size in config.infer_sizes}
    if "upscale" in sections:
        details["upscale"] = measure_upscale(config)
        results["upscale_2048_peak_rss_mb"] = details["upscale"]["peak_rss_mb"]
    results["targets"] = target_checks(results)
    return results


def _settings(config):
    settings = dataclasses.asdict(config)
    settings["hr_dir"] = config.resolved_hr_dir
    settings["recipe_overrides"] = dict(config.recipe_overrides)
    return settings


def _conv_ceiling(results, policy):
    conv = results.get("conv_gflops") or {}
    return conv.get(COMPUTE_DTYPES[policy])


def target_checks(results):
    """Compares the measured ratios with the benchmark's targets.

    Returns:
      list of dicts: name, value, target (text), met (bool); only for figures measured.
    """
    checks = []
    details = results["details"]

    def add(name, value, target, met):
        checks.append({"name": name, "value": value, "target": target, "met": bool(met)})

    for stage in ("init", "gan"):
        for preset, row in (details.get(f"{stage}_step") or {}).items():
            for policy, m in row.items():
                ceiling = _conv_ceiling(results, policy)
                if ceiling:
                    add(f"{stage} step {preset} {policy} / conv ceiling", m["gflops"] / ceiling,
                        f">= {STEP_TARGET:.0%}", m["gflops"] / ceiling >= STEP_TARGET)
    if results["system"]["bf16_native"]:
        for preset, row in (details.get("init_step") or {}).items():
            if "float32" in row and "mixed_bfloat16" in row:
                speedup = row["float32"]["ms"] / row["mixed_bfloat16"]["ms"]
                add(f"init step {preset} mixed_bfloat16 speed-up over float32", speedup,
                    f">= {BF16_SPEEDUP_TARGET}x", speedup >= BF16_SPEEDUP_TARGET)
    pipeline = results.get("pipeline")
    if pipeline:
        ratio = pipeline["store"] / pipeline["bicubic_ceiling"]
        add("store / bicubic ceiling patch rate", ratio, f">= {STORE_TARGET:g}x",
            ratio >= STORE_TARGET)
        ratio = pipeline["files_crops"] / pipeline["files"]
        add(f"files with {pipeline['crops_per_image']} crops per image / 1 crop", ratio,
            f">= {FILES_CROPS_TARGET:g}x", ratio >= FILES_CROPS_TARGET)
        consumed = [results["settings"]["batch_size"] * 1e3 / m["ms"]
                    for row in (details.get("init_step") or {}).values() for m in row.values()]
        if consumed and "realistic" in pipeline:  # the init step timed in the same run
            ratio = pipeline["realistic"] / max(consumed)
            add("--degradation realistic / fastest init step patch rate", ratio,
                f">= {REALISTIC_TARGET:g}x", ratio >= REALISTIC_TARGET)
    upscale = details.get("upscale")
    if upscale:
        add(f"tiled upscale {upscale['size']}x{upscale['size']} peak RSS (MB)",
            upscale["peak_rss_mb"], f"< {RSS_TARGET_MB:.0f} MB",
            upscale["peak_rss_mb"] < RSS_TARGET_MB and upscale["exit_code"] in (0, -9))
    inference = details.get("inference") or {}
    for policy, sizes in inference.items():
        largest = max(sizes, key=int)
        ceiling = _conv_ceiling(results, policy)
        if ceiling:
            ratio = sizes[largest]["gflops"] / ceiling
            add(f"inference {largest}x{largest} {policy} / conv ceiling", ratio,
                f">= {INFER_TARGET:.0%}", ratio >= INFER_TARGET)
    return checks
