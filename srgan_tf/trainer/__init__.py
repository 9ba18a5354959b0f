"""Training: stage `init` (generator on MSE) and stage `gan` (generator + discriminator + VGG).

One `tf.train.Checkpoint` per stage holds the models, optimizers and the step counter; the data
position follows from the step (see `data.TrainingData`). Constructing a `Trainer` restores the
latest checkpoint of its stage, so rerunning the same command resumes the run.

Any tf.distribute strategy works (see `distribute`): models, optimizers and VGG live in its scope,
each replica reads its share of the global batch, losses are averaged over the global batch and
BatchNorm uses global-batch statistics. In a multi-worker cluster every worker trains and takes
part in every save, but only the chief writes the run directory (checkpoints, summaries, logs,
generator.keras); the others save into a temporary folder that is removed.

Submodules: `loop` (Trainer, the loop, prepare_data), `steps` (the train steps) and `stopping`
(early-stop errors, checkpoint saves, signals). Their names load on first use (srgan_tf/facade.py).
"""

from srgan_tf import facade

facade.export(__name__, {
    "loop": (
        "GENERATOR_FILE", "DISCRIMINATOR_FILE", "LOG_FILE", "SAMPLE_FILE", "INPUT_WAIT",
        "INPUT_WAIT_WARNING", "SCAN_CACHE_FILE", "prepare_data", "build_discriminator", "_adam",
        "Trainer", "train", "read_stage_config", "CONFIG_FILE", "build_generator",),
    "steps": (
        "GRADS_BAD", "_count_nonfinite", "TrainSteps",),
    "stopping": (
        "NonFiniteLossError", "CheckpointWriteError", "Interrupted", "_save", "_SignalCatcher",),
})
