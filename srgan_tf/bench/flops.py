"""FLOPs counted from the Conv2D / MatMul ops of a traced forward pass, and of a train step."""

import re

import tensorflow as tf

from srgan_tf.config import SCALE
from srgan_tf.models.blocks import folded_op_name

_FOLDED_OP = re.compile(folded_op_name(r"(\d+)", r"(\d+)"))


def _op_flops(op):
    """FLOPs (2 per multiply-add) of one Conv2D / MatMul graph op; 0 for any other op.

    The Conv2D of a `FoldedConv2D` counts as the k x k conv it computes (over whole fold blocks).
    """
    if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
        raise ValueError(f"forward_flops cannot look inside the nested function {op.name}")
    if op.type not in ("Conv2D", "MatMul"):
        return 0
    out = op.outputs[0].shape
    if not out.is_fully_defined():
        raise ValueError(f"{op.name} has an undefined output shape {out}: give a full input shape")
    if op.type == "Conv2D":
        kernel_h, kernel_w, channels_in, _ = op.inputs[1].shape
        folded = _FOLDED_OP.search(op.name)
        if folded:  # a FoldedConv2D: count the k x k conv it computes, not its zero weights
            kernel, fold = int(folded.group(1)), int(folded.group(2))
            return 2 * out.num_elements() * kernel * kernel * channels_in // fold ** 2
        return 2 * out.num_elements() * kernel_h * kernel_w * channels_in
    a = op.inputs[0].shape
    inner = a[0] if op.get_attr("transpose_a") else a[1]
    return 2 * out.num_elements() * inner


def forward_flops(model, input_shape):
    """Counts the FLOPs of a forward pass: 2 per multiply-add of its convolutions and dense layers.

    The model is traced once on a float32 input of `input_shape`; each Conv2D op costs
    2 x output elements x kernel height x kernel width x input channels, each MatMul
    2 x output elements x inner dimension. Nothing else is counted.

    Args:
      model: a built keras model (or layer) taking one float32 [B, H, W, C] tensor.
      input_shape: full input shape, e.g. [16, 24, 24, 3].
    Returns:
      int.
    """
    traced = tf.function(lambda x: model(x, training=False))
    graph = traced.get_concrete_function(tf.TensorSpec(input_shape, tf.float32)).graph
    return int(sum(_op_flops(op) for op in graph.get_operations()))


def train_step_flops(trainer, batch_size, lr_patch):
    """FLOPs of one train step of a Trainer, by network (see the module docstring).

    Returns:
      dict: "generator" (3x forward), and in stage gan "discriminator" (6x forward: HR and SR
      batches) and "vgg" (3x forward up to the tapped layer); "total" their sum. The
      alternating gan update (trainer.recipe.gan_update) runs the generator forward once more
      (4x) and the discriminator on SR once more, forward and input gradient (8x).
    """
    lr_shape = [batch_size, lr_patch, lr_patch, 3]
    hr_shape = [batch_size, SCALE * lr_patch, SCALE * lr_patch, 3]
    alternating = trainer.is_gan and trainer.recipe.gan_update == "alternating"
    flops = {"generator": (4 if alternating else 3) * forward_flops(trainer.generator, lr_shape)}
    if trainer.is_gan:
        flops["discriminator"] = ((8 if alternating else 6)
                                  * forward_flops(trainer.discriminator, hr_shape))
        flops["vgg"] = 3 * forward_flops(trainer.vgg, hr_shape)
    flops["total"] = sum(flops.values())
    return flops
