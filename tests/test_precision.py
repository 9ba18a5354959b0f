"""Precision: the auto choice, and train steps under each mixed policy."""

import keras
import numpy as np
import pytest

from srgan_tf import precision, trainer
from srgan_tf.config import TrainConfig


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("features,gpus,expected", [
    (["AVX2", "AVX-512", "AVX512-BF16"], [], "mixed_bfloat16"),
    (["AVX2", "AVX-512", "AMX-BF16"], [], "mixed_bfloat16"),
    (["AVX2"], [], "float32"),
    (["AVX2", "AVX-512"], [], "float32"),
    ([], [(8, 0)], "mixed_bfloat16"),
    ([], [(7, 5)], "mixed_float16"),
])
def test_auto_uses_bf16_only_where_native(features, gpus, expected):
    assert precision.resolve_precision("auto", features, gpus) == expected


@pytest.mark.parametrize("features,gpus,expected", [
    (["AVX2"], [], ("float32",)),
    (["AVX2", "AVX-512", "AVX512-BF16"], [], ("float32", "mixed_bfloat16")),
    (["AVX2", "AMX-BF16"], [], ("float32", "mixed_bfloat16")),
    ([], [(7, 5)], ("float32", "mixed_float16")),
    ([], [(8, 0), (9, 0)], ("float32", "mixed_bfloat16", "mixed_float16"))])
def test_native_precisions(features, gpus, expected):
    assert precision.native_precisions(features, gpus) == expected


def test_explicit_precision_is_kept_and_unknown_rejected():
    assert precision.resolve_precision("float32", ["AMX-BF16"], []) == "float32"
    with pytest.raises(ValueError, match="--precision must be one of .* got 'fp8'"):
        precision.resolve_precision("fp8")


def test_cpu_features_parse_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Some CPU\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert precision.cpu_features(str(info)) == ["AVX2", "AVX-512", "AVX512-BF16"]
    assert precision.cpu_name(str(info)) == "Some CPU"


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_train_steps_run_in_mixed_precision(tmp_path, image_dir, tiny_recipe, vgg_random, policy,
                                            restore_policy):
    precision.set_precision(policy)
    for stage in ("init", "gan"):
        config = TrainConfig(stage=stage, checkpoint_dir=str(tmp_path / stage),
                             hr_dir=str(image_dir), recipe=tiny_recipe, steps=1,
                             vgg_weights="none", from_scratch=True, precision=policy).validate()
        t = trainer.Trainer(config, vgg=vgg_random)
        assert t.generator.compute_dtype == policy.split("_")[1]
        assert all(v.dtype == "float32" for v in t.generator.trainable_variables)
        lr, hr = t.data.fixed_batch(2)
        out = t.step_function()(lr, hr)
        assert all(v.dtype == "float32" and np.isfinite(float(v)) for v in out.values())
        if policy == "mixed_float16":  # each optimizer scales its own loss
            assert isinstance(t.g_optimizer, keras.optimizers.LossScaleOptimizer)
            if stage == "gan":
                assert isinstance(t.d_optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("cap,bf16", [
    ("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
    ("AVX512_CORE_AMX", True), ("ALL", True), ("", True)])
def test_onednn_isa_cap_below_bf16_rules_bf16_out(monkeypatch, cap, bf16):
    # Under ONEDNN_MAX_CPU_ISA=AVX2 oneDNN has no bf16 convolution: a bf16 model fails there.
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    features = ["AVX2", "AVX-512", "AVX512-BF16"]
    assert precision.resolve_precision("auto", features, []) == (
        "mixed_bfloat16" if bf16 else "float32")
    assert ("mixed_bfloat16" in precision.native_precisions(features, [])) == bf16
    assert precision.resolve_precision("mixed_bfloat16", features, []) == "mixed_bfloat16"
    assert precision.resolve_precision("auto", ["AVX2"], []) == "float32"
    # A GPU's choice does not depend on the CPU's oneDNN.
    assert precision.resolve_precision("auto", features, [(8, 0)]) == "mixed_bfloat16"


def test_onednn_isa_cap_reads_the_older_name_too():
    assert precision.onednn_isa_cap({"DNNL_MAX_CPU_ISA": "avx2"}) == "AVX2"
    assert precision.onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX2",
                                     "DNNL_MAX_CPU_ISA": "ALL"}) == "AVX2"
    assert precision.onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "default"}) is None
    assert precision.onednn_isa_cap({}) is None
