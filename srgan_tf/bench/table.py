"""The results as one Markdown table."""

from srgan_tf.bench.runner import _conv_ceiling
from srgan_tf.bench.settings import XLA_SUFFIX
from srgan_tf.config import SCALE
from srgan_tf.upscale.tiling import DEFAULT_TILE


def _row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _num(value):
    """A figure with three significant digits, without exponent for the usual magnitudes."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _percent(value, ceiling):
    return f"{value / ceiling:.0%}" if ceiling else ""


def _target_cell(results, name):
    for check in results["targets"]:
        if check["name"] == name:
            return f"{check['target']}: {'yes' if check['met'] else 'NO'}"
    return ""


def format_table(results):
    """Returns the benchmark's figures as one Markdown table (and a line on the settings)."""
    info, settings, details = results["system"], results["settings"], results["details"]
    batch, patch = settings["batch_size"], settings["lr_patch"]
    threads = info["intra_op_threads"] or f"TF default ({info['usable_cores']})"
    lines = [f"srgan_tf benchmark: batch {batch}, LR patch {patch} (HR {SCALE * patch}); "
             f"median of {settings['repeats']} after {settings['warmup']} warm-up"
             + (" (--quick)" if settings["quick"] else "")
             + (", train steps also with --jit_compile (XLA)"
                if True in settings["jit_compile"] else "")
             + (f"; not timed: {','.join(settings['skipped_precisions'])} (emulated here; "
                "--precisions forces it)" if settings.get("skipped_precisions") else ""), "",
             _row("#", "measurement", "precision", "time", "throughput", "GFLOP/s",
                  "of ceiling", "target"),
             _row(*["---"] * 8)]
    features = ", ".join(info["cpu_features"]) or "none of AVX2/AVX-512/AVX512-BF16/AMX"
    cap = f", ISA cap {info['onednn_max_cpu_isa']}" if info.get("onednn_max_cpu_isa") else ""
    lines.append(_row(0, f"{info['device']}; CPU features {features}; "
                         f"{info['usable_cores']} of {info['cores']} cores, intra-op threads "
                         f"{threads}, oneDNN {info['onednn_opts']}{cap}; TF {info['tensorflow']}",
                      "", "", "", "", "", ""))
    if results["matmul_gflops"]:
        size, conv, feat = settings["matmul_size"], settings["conv_size"], settings["conv_feat"]
        for dtype, value in results["matmul_gflops"].items():
            lines.append(_row(1, f"matmul {size}x{size} @ {size}x{size}", dtype, "", "",
                              _num(value), "", ""))
        for dtype, value in results["conv_gflops"].items():
            lines.append(_row(1, f"conv 3x3 {feat}->{feat} fwd+bwd, {batch}x{conv}x{conv}",
                              dtype, "", "", _num(value), "ceiling", ""))
        for dtype, value in details["conv_lr_gflops"].items():
            lines.append(_row(1, f"conv 3x3 {feat}->{feat} fwd+bwd, {batch}x{patch}x{patch} "
                                 "(the generator trunk's shape)", dtype, "", "",
                              _num(value), _percent(value, results["conv_gflops"][dtype]),
                              ""))
    for suffix in ("", XLA_SUFFIX):
        by_update = details.get(f"gan_step{suffix}_by_update") or {}
        modes = list(by_update) or [settings["gan_updates"][0]]
        rows = [(2, "init", None, details.get(f"init_step{suffix}"))]
        rows += [(3, "gan", mode, by_update.get(mode, details.get(f"gan_step{suffix}")))
                 for mode in modes]
        for number, stage, mode, steps in rows:
            plain_steps = details.get(f"{stage}_step") or {}
            for preset, row in (steps or {}).items():
                for policy, m in row.items():
                    parts = " + ".join(f"{k[0].upper() if k != 'vgg' else 'VGG'} "
                                       f"{_num(v / 1e9)}"
                                       for k, v in m["flops"].items() if k != "total")
                    name = f"{stage} step {preset} {policy} / conv ceiling"
                    target = _target_cell(results, name) if not suffix else ""
                    if policy != "float32" and "float32" in row:
                        speedup = "" if suffix else _target_cell(
                            results, f"{stage} step {preset} {policy} speed-up over float32")
                        target += (f"; {row['float32']['ms'] / m['ms']:.2f}x float32"
                                   + (f" ({speedup})" if speedup else ""))
                    if mode is not None and mode != "shared" and "shared" in by_update:
                        shared = by_update["shared"][preset][policy]["ms"]
                        target += f"; {m['ms'] / shared:.2f}x the shared step's time"
                    plain = plain_steps.get(preset, {}).get(policy)
                    if suffix and plain and mode in (None, modes[0]):
                        target += (f"; {plain['ms'] / m['ms']:.2f}x without XLA; first call "
                                   f"{m['first_s']:.0f} s (without: {plain['first_s']:.0f} s)")
                    label = (f"{stage} step {preset}" + (f" {mode}" if len(modes) > 1 and mode
                                                         else "")
                             + (" XLA" if suffix else ""))
                    lines.append(_row(number, f"{label} ({_num(m['gflop'])} GFLOP: {parts})",
                                      policy, f"{_num(m['ms'])} ms",
                                      f"{_num(m['patches_per_s'])} patches/s", _num(m["gflops"]),
                                      _percent(m["gflops"], _conv_ceiling(results, policy)),
                                      target.lstrip("; ")))
    pipeline = results.get("pipeline")
    if pipeline:
        size = "x".join(map(str, pipeline["image_size"][::-1]))
        crops = pipeline["crops_per_image"]
        for key, label in (("files", "image files, 1 crop per decode"),
                           ("files_crops", f"image files, --crops_per_image {crops}"),
                           ("cache", "--cache"), ("store", "--store"),
                           ("store_flip_rot90", "--store, --augment flip_rot90"),
                           ("realistic", "--store, --degradation realistic"),
                           ("bicubic_ceiling", "batched bicubic x4 alone (ceiling)")):
            rate = pipeline.get(key)
            if rate is None:  # a JSON of an older version
                continue
            crop = pipeline["crop"]
            ratio = f"{rate / pipeline['bicubic_ceiling']:.2f}x ceiling"
            if key == "realistic":  # at the init step's crop: compared with its patch rate
                crop, ratio = pipeline["realistic_crop"], ""
            target = {"store": _target_cell(results, "store / bicubic ceiling patch rate"),
                      "files_crops": _target_cell(
                          results, f"files with {crops} crops per image / 1 crop"),
                      }.get(key, "")
            if key == "realistic":
                for check in results["targets"]:
                    if check["name"].startswith("--degradation realistic"):
                        target = (f"{check['value']:.1f}x the init step ({check['target']}: "
                                  f"{'yes' if check['met'] else 'NO'})")
            lines.append(_row(4, f"tf.data {label}: {pipeline['images']} PNGs {size}, crop "
                                 f"{crop}", "uint8",
                              f"{_num(1e3 * pipeline['batch'] / rate)} ms/batch",
                              f"{_num(rate)} patches/s", "", ratio, target))
        for stage in ("init", "gan"):
            demand = pipeline["gpu_demand"][stage]
            gflop = pipeline["gpu_demand"]["gflop_per_patch"][stage]
            lines.append(_row(4, f"GPU demand, {stage} step ({_num(gflop)} GFLOP/patch) at "
                                 + " / ".join(f"{t} TFLOP/s" for t in demand), "", "",
                              " / ".join(f"{_num(v)}" for v in demand.values()) + " patches/s",
                              "", "", ""))
    for policy, sizes in (details.get("inference") or {}).items():
        largest = max(sizes, key=int)
        for size, m in sizes.items():
            name = f"inference {size}x{size} {policy} / conv ceiling"
            lines.append(_row(5, f"inference {size}x{size} -> {SCALE * int(size)}x"
                                 f"{SCALE * int(size)} ({settings['infer_preset']}, whole image)",
                              policy, f"{_num(m['ms'])} ms", f"{_num(m['mpix_per_s'])} MP/s",
                              _num(m["gflops"]),
                              _percent(m["gflops"], _conv_ceiling(results, policy)),
                              _target_cell(results, name) if size == largest else ""))
    upscale = details.get("upscale")
    if upscale:
        size = upscale["size"]
        reached = (f"at tile {upscale['tiles_done']} of {upscale['tiles']}"
                   if upscale["tiles_done"] is not None else "before its first progress line")
        state = "" if upscale["complete"] else (
            f", stopped after {upscale['seconds']:.0f} s {reached}" if upscale["exit_code"] == -9
            else f", FAILED with exit code {upscale['exit_code']}")
        tile = upscale["tile"] if upscale["tile"] is not None else f"{DEFAULT_TILE} (CLI default)"
        lines.append(_row(5, f"tiled upscale CLI {size}x{size} -> {SCALE * size}x{SCALE * size}"
                             f" (tile {tile}, own process{state})", "float32",
                          f"{upscale['seconds']:.0f} s",
                          f"peak RSS {upscale['peak_rss_mb']:.0f} MB", "", "",
                          _target_cell(results, f"tiled upscale {size}x{size} peak RSS (MB)")))
    return "\n".join(lines)
