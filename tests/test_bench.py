"""Tests of srgan_tf.bench: FLOPs by hand, the JSON of a tiny run, the CLI, the upscale probe."""

import json
import os
import subprocess
import sys
import time
import types

import keras
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import bench
from srgan_tf import precision as precision_lib
from srgan_tf.bench.ceilings import device_info
from srgan_tf.config import Recipe
from srgan_tf.models import Discriminator, Generator
from tests.conftest import REPO, write_images

TINY = (("num_feat", 8), ("num_block", 1), ("upsample_feat", 32), ("disc_feat", 4),
        ("vgg_input_size", 32))


def conv(pixels, kernel, channels_in, channels_out):
    """FLOPs of a stride-1 'same' convolution over `pixels` output positions (batch included)."""
    return 2 * pixels * kernel * kernel * channels_in * channels_out


def test_forward_flops_of_tiny_generators():
    lr = 2 * 8 * 8  # batch 2 of 8x8: output positions at LR, x4 after each pixel shuffle
    trunk = conv(lr, 3, 8, 8) * 3  # residual block (2 convs) + conv_body
    upsample = conv(lr, 3, 8, 32) + conv(4 * lr, 3, 8, 32)  # 32 channels -> 8 after shuffle
    expected = {"tensorlayer": conv(lr, 3, 3, 8) + trunk + upsample + conv(16 * lr, 1, 8, 3),
                "paper": conv(lr, 9, 3, 8) + trunk + upsample + conv(16 * lr, 9, 8, 3)}
    assert expected["tensorlayer"] == 3_545_088
    for preset, flops in expected.items():
        generator = Generator(preset=preset, num_feat=8, num_block=1, upsample_feat=32)
        generator(tf.zeros([1, 8, 8, 3]))
        assert bench.forward_flops(generator, [2, 8, 8, 3]) == flops


def test_forward_flops_counts_dense_layers_and_needs_full_shapes():
    model = keras.Sequential([keras.Input([7]), keras.layers.Dense(5)])
    assert bench.forward_flops(model, [3, 7]) == 2 * 3 * 7 * 5
    generator = Generator(num_feat=8, num_block=1, upsample_feat=32)
    with pytest.raises(ValueError, match="undefined output shape"):
        bench.forward_flops(generator, [1, None, None, 3])


def test_train_step_flops_weights_each_network():
    generator = Generator(num_feat=8, num_block=1, upsample_feat=32)
    generator(tf.zeros([1, 8, 8, 3]))
    discriminator = Discriminator(preset="paper", disc_feat=4)
    discriminator(tf.zeros([1, 32, 32, 3]))
    vgg = keras.Sequential([keras.Input([None, None, 3]),
                            keras.layers.Conv2D(4, 3, padding="same")])
    g = bench.forward_flops(generator, [2, 8, 8, 3])
    d = bench.forward_flops(discriminator, [2, 32, 32, 3])
    v = conv(2 * 32 * 32, 3, 3, 4)
    init = types.SimpleNamespace(generator=generator, is_gan=False)
    assert bench.train_step_flops(init, 2, 8) == {"generator": 3 * g, "total": 3 * g}
    gan = types.SimpleNamespace(generator=generator, discriminator=discriminator, vgg=vgg,
                                is_gan=True, recipe=Recipe(gan_update="shared"))
    assert bench.train_step_flops(gan, 2, 8) == {"generator": 3 * g, "discriminator": 6 * d,
                                                 "vgg": 3 * v, "total": 3 * g + 6 * d + 3 * v}
    gan.recipe = Recipe(gan_update="alternating")  # G forward twice, D(SR) forward twice
    assert bench.train_step_flops(gan, 2, 8) == {"generator": 4 * g, "discriminator": 8 * d,
                                                 "vgg": 3 * v, "total": 4 * g + 8 * d + 3 * v}


def test_config_errors_name_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--sections must be a comma list of .* got 'ceiling'"):
        bench.BenchConfig(sections=("ceiling",)).validate()
    with pytest.raises(ValueError, match="--precisions .* got 'float32,fp8'"):
        bench.BenchConfig(precisions=("float32", "fp8")).validate()
    with pytest.raises(ValueError, match="--repeats must be positive, got 0"):
        bench.BenchConfig(repeats=0).validate()
    with pytest.raises(FileNotFoundError, match="--hr_dir .*missing"):
        bench.BenchConfig(hr_dir=str(tmp_path / "missing")).validate()
    quick = bench.BenchConfig.create(quick=True, repeats=None, warmup=4)
    assert (quick.repeats, quick.warmup, quick.upscale_timeout) == (3, 4, 20.0)
    assert quick.time_budget == 10.0 and bench.BenchConfig().time_budget is None


def test_time_calls_stops_at_the_budget():
    calls = []
    fn = lambda: calls.append(time.sleep(0.05)) or tf.zeros([1])  # noqa: E731
    assert len(bench.time_calls(fn, warmup=1, repeats=5, budget=0.08)) == 2
    assert len(calls) == 3
    assert len(bench.time_calls(fn, warmup=0, repeats=3)) == 3


def _results(config, details=None, **system):
    """What `run_benchmark` returns with no section run, for `format_table`."""
    return {"system": {"device": "CPU: x", "cpu_features": [], "usable_cores": 2, "cores": 2,
                       "intra_op_threads": 2, "onednn_opts": "default", "tensorflow": "x",
                       **system},
            "settings": bench._settings(config), "details": details or {}, "targets": [],
            **dict.fromkeys(["matmul_gflops", "conv_gflops", "pipeline_patches_per_s",
                             "infer_ms", "upscale_2048_peak_rss_mb"])}


@pytest.mark.parametrize("features,timed", [
    (["AVX2"], ("float32",)),
    (["AVX2", "AVX-512", "AVX512-BF16"], ("float32", "mixed_bfloat16"))])
def test_quick_times_only_native_precisions_unless_forced(monkeypatch, features, timed):
    # The CPU's features are injected, so this runs the same on any CPU.
    monkeypatch.setattr(precision_lib, "cpu_features", lambda *_: features)
    monkeypatch.setattr(precision_lib, "gpu_compute_capabilities", lambda: [])
    skipped = tuple(p for p in bench.DEFAULT_PRECISIONS if p not in timed)
    quick = bench.BenchConfig.create(quick=True, precisions=None)
    assert (quick.precisions, quick.skipped_precisions) == (timed, skipped)
    forced = bench.BenchConfig.create(quick=True, precisions=("float32", "mixed_bfloat16"))
    assert (forced.precisions, forced.skipped_precisions) == (("float32", "mixed_bfloat16"), ())
    full = bench.BenchConfig.create(precisions=None)  # without --quick: every default one
    assert (full.precisions, full.skipped_precisions) == (bench.DEFAULT_PRECISIONS, ())
    # --quick times the default gan update only (the gan steps are its longest part) unless given.
    assert (quick.gan_updates, full.gan_updates) == (("alternating",), ("alternating", "shared"))
    assert bench.BenchConfig.create(quick=True, gan_updates=("shared", "alternating")).gan_updates \
        == ("shared", "alternating")
    # ... of the first preset only unless --presets is given, and inference up to 256x256.
    assert (quick.resolved_gan_presets, full.resolved_gan_presets) == (("tensorlayer",),
                                                                       ("tensorlayer", "paper"))
    given = bench.BenchConfig.create(quick=True, presets=("paper", "tensorlayer"))
    assert given.resolved_gan_presets == ("paper", "tensorlayer")
    assert (quick.infer_sizes, full.infer_sizes) == ((128, 256), (128, 512))
    assert bench.BenchConfig.create(quick=True, infer_sizes=(64,)).infer_sizes == (64,)
    assert (quick.matmul_size, full.matmul_size) == (2048, 4096)
    results = _results(quick, cpu_features=features, tensorflow=tf.__version__)
    header = bench.format_table(results).splitlines()[0]
    assert ("not timed: mixed_bfloat16 (emulated here; --precisions forces it)" in header) \
        == bool(skipped)


@pytest.mark.parametrize("run,state", [
    ({"complete": True, "exit_code": 0, "tiles_done": 121, "tiles": 121}, "own process)"),
    ({"complete": False, "exit_code": -9, "tiles_done": 12, "tiles": 121},
     "own process, stopped after 20 s at tile 12 of 121)"),
    ({"complete": False, "exit_code": -9, "tiles_done": None, "tiles": None},
     "own process, stopped after 20 s before its first progress line)"),
    ({"complete": False, "exit_code": 2, "tiles_done": None, "tiles": None},
     "own process, FAILED with exit code 2)")])
def test_upscale_row_says_how_far_the_cli_got(run, state):
    upscale = {"peak_rss_mb": 900.0, "seconds": 20.0, "tile": None, "size": 2048, **run}
    results = _results(bench.BenchConfig.create(quick=True), details={"upscale": upscale})
    row = [line for line in bench.format_table(results).splitlines() if "tiled upscale" in line]
    assert len(row) == 1 and f"(tile 192 (CLI default), {state}" in row[0]


def test_quick_skips_bf16_under_a_onednn_isa_cap(monkeypatch):
    # The CPU has AVX512-BF16, but ONEDNN_MAX_CPU_ISA=AVX2 leaves oneDNN no bf16 convolution.
    monkeypatch.setattr(precision_lib, "cpu_features", lambda *_: ["AVX2", "AVX-512",
                                                                   "AVX512-BF16"])
    monkeypatch.setattr(precision_lib, "gpu_compute_capabilities", lambda: [])
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    quick = bench.BenchConfig.create(quick=True, precisions=None)
    assert (quick.precisions, quick.skipped_precisions) == (("float32",), ("mixed_bfloat16",))
    info = device_info()
    assert (info["onednn_max_cpu_isa"], info["bf16_native"]) == ("AVX2", False)
    results = _results(quick, **info)
    assert "oneDNN default, ISA cap AVX2; TF" in bench.format_table(results)


@pytest.mark.slow
def test_tiny_run_has_the_json_shape(tmp_path):
    hr_dir = tmp_path / "hr"
    write_images(hr_dir, [(64, 64)] * 4)
    config = bench.BenchConfig(
        presets=("tensorlayer", "paper"), gan_presets=("tensorlayer",), batch_size=2, lr_patch=8, matmul_size=64, conv_size=16,
        conv_feat=8, hr_dir=str(hr_dir), infer_sizes=(8, 16), upscale_size=32, warmup=0,
        repeats=1, pipeline_batches=1, recipe_overrides=TINY, pipeline_crop=32, pipeline_images=4,
        pipeline_image_size=(48, 64))  # figures meaningless, shape kept
    results = bench.run_benchmark(config)
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored
    results = json.loads(json.dumps(results))  # JSON-serialisable as written
    positive = lambda v: isinstance(v, float) and v > 0  # noqa: E731
    assert results["device"].startswith(("CPU: ", "GPU: "))
    assert isinstance(results["cpu_features"], list)
    for key in ("matmul_gflops", "conv_gflops"):
        assert set(results[key]) == {"float32", "bfloat16"}
        assert all(map(positive, results[key].values()))
    # The gan steps of `gan_presets` only (what --quick does), the init steps of every preset.
    assert set(results["init_step_ms"]) == {"tensorlayer", "paper"}
    assert set(results["gan_step_ms"]) == {"tensorlayer"}
    for key in ("init_step_ms", "gan_step_ms"):
        assert set(results[key]["tensorlayer"]) == {"float32", "mixed_bfloat16"}
        assert all(map(positive, results[key]["tensorlayer"].values()))
    assert positive(results["pipeline_patches_per_s"])
    pipeline = results["pipeline"]
    for key in ("files", "files_crops", "cache", "store", "store_flip_rot90", "bicubic_ceiling"):
        assert positive(pipeline[key])
    assert pipeline["augment"] == "none"  # the TensorLayer recipe's, at its crop and batch
    assert positive(pipeline["realistic"]) and pipeline["realistic_crop"] == 4 * 8  # lr_patch 8
    realistic = [t for t in results["targets"] if t["name"].startswith("--degradation realistic")]
    init_rate = max(2e3 / ms for row in results["init_step_ms"].values()  # the fastest init step
                    for ms in row.values())
    assert realistic[0]["value"] == pytest.approx(pipeline["realistic"] / init_rate)
    assert set(pipeline["gpu_demand"]["init"]) == set(pipeline["gpu_demand"]["gan"]) == {"100",
                                                                                         "300"}
    # Patches/s a GPU consumes: TFLOP/s over the FLOPs of a step per patch.
    gflop = pipeline["gpu_demand"]["gflop_per_patch"]
    assert gflop["gan"] > gflop["init"] > 0
    assert pipeline["gpu_demand"]["init"]["300"] == pytest.approx(300e3 / gflop["init"])
    assert set(results["infer_ms"]) == {"8", "16"}
    assert set(results["infer_ms"]["16"]) == {"float32", "mixed_bfloat16"}
    assert positive(results["upscale_2048_peak_rss_mb"])
    assert results["details"]["upscale"]["complete"]
    step = results["details"]["gan_step"]["tensorlayer"]["float32"]
    assert set(step["flops"]) == {"generator", "discriminator", "vgg", "total"}
    # Both update modes are timed; gan_step_ms is the default (alternating) one.
    by_update = results["details"]["gan_step_by_update"]
    assert set(by_update) == {"alternating", "shared"}
    assert by_update["alternating"]["tensorlayer"]["float32"]["ms"] \
        == results["gan_step_ms"]["tensorlayer"]["float32"]
    assert step["gflop"] > by_update["shared"]["tensorlayer"]["float32"]["gflop"]
    assert all(isinstance(c["met"], bool) for c in results["targets"])
    table = bench.format_table(results)
    for section in range(6):
        assert f"\n| {section} |" in table
    assert "gan step tensorlayer alternating" in table and "x the shared step's time" in table


def test_steps_with_and_without_xla(tmp_path):
    hr_dir = tmp_path / "hr"
    write_images(hr_dir, [(64, 64)] * 2)
    config = bench.BenchConfig(
        sections=("init",), presets=("tensorlayer",), precisions=("float32",), batch_size=2,
        lr_patch=8, hr_dir=str(hr_dir), warmup=0, repeats=1, jit_compile=(False, True),
        recipe_overrides=TINY)
    results = json.loads(json.dumps(bench.run_benchmark(config)))
    plain, xla = results["init_step_ms"], results["init_step_xla_ms"]
    assert results["init_xla_speedup"] == {
        "tensorlayer": {"float32": pytest.approx(plain["tensorlayer"]["float32"]
                                                 / xla["tensorlayer"]["float32"])}}
    assert results["gan_step_xla_ms"] is None and results["gan_xla_speedup"] is None
    # The XLA row times a step that XLA compiled: its first call includes the compilation.
    assert results["details"]["init_step_xla"]["tensorlayer"]["float32"]["first_s"] > 0
    table = bench.format_table(results)
    assert "| 2 | init step tensorlayer XLA (" in table and "x without XLA; first call" in table
    with pytest.raises(ValueError, match="--jit_compile must be off, on or off,on"):
        bench.BenchConfig(jit_compile=()).validate()


def test_run_upscale_stops_at_the_timeout(tmp_path):
    generator = Generator(num_feat=8, num_block=1, upsample_feat=32)
    generator(tf.zeros([1, 8, 8, 3]))
    generator.save(tmp_path / "g.keras")
    Image.fromarray(bench.synthetic_image(64)).save(tmp_path / "in.png")
    run = bench.run_upscale([str(tmp_path / "in.png"), "--output_dir", str(tmp_path / "out"),
                             "--model", str(tmp_path / "g.keras")], timeout=0.5)
    assert run.timed_out and run.exit_code == -9
    assert run.peak_rss_bytes > 0
    assert not os.path.exists(tmp_path / "out" / "in_x4.png")


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "srgan_tf.bench", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_writes_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli("--quick", "--sections", "ceilings", "--matmul_size", 64, "--conv_size", 8,
                     "--batch_size", 2, "--lr_patch", 8, "--precisions", "float32",
                     "--output_json", out)
    assert result.returncode == 0, result.stderr
    assert "| 1 | conv 3x3 64->64 fwd+bwd, 2x8x8 | float32 |" in result.stdout
    figures = json.loads(out.read_text())
    assert set(figures["conv_gflops"]) == {"float32"} and figures["init_step_ms"] is None
    assert figures["settings"]["quick"] and figures["settings"]["repeats"] == 3


_FAKE_RUN = """
import sys
import keras
from srgan_tf import bench
from srgan_tf.cli import bench as cli
from tests.test_bench import _results

def fake_run(config):
    keras.utils.Progbar(2, unit_name="image").update(2)  # as the pipeline's --cache decode does
    return _results(config)

bench.run_benchmark = fake_run
sys.argv = ["bench", "--sections", "pipeline", "--precisions", "float32"]
cli.run()
"""


def test_cli_stdout_is_the_table_alone():
    # Progress bars during the run (Keras's Progbar writes to sys.stdout) go to stderr.
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _FAKE_RUN], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("srgan_tf benchmark: ")
    assert "2/2" in result.stderr and "2/2" not in result.stdout


@pytest.mark.parametrize("args,message", [
    (("--sections", "ceilings,warp"), "error: --sections must be"),
    (("--jit_compile", "off,maybe"), "error: --jit_compile must be off, on or off,on, got "
                                     "'off,maybe'"),
])
def test_cli_bad_flag_is_one_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
