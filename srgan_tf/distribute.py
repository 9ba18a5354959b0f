"""tf.distribute strategies for training, and what each worker of a cluster may write.

`--strategy` picks one of TensorFlow's own strategies:

* ``default``: the current strategy (one device: the first GPU, else the CPU).
* ``mirrored``: `tf.distribute.MirroredStrategy`, one replica per local GPU (or per `--devices`).
* ``multi_worker``: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine, cluster
  and role of this process read from the ``TF_CONFIG`` environment variable.
* ``tpu``: `tf.distribute.TPUStrategy` on the TPU found by `TPUClusterResolver(tpu=--tpu)`.
  Written from TensorFlow's documentation and not run by the tests (no TPU here).

Under every strategy the trainer averages losses over the global batch and, with more than one
replica, makes BatchNormalization compute its statistics over the global batch too
(`synchronize_batch_norm`), so N replicas train what one device would on the same global batch.
"""

import json
import os
import tempfile

import keras
import tensorflow as tf
from absl import logging


def make_strategy(config):
    """Builds the tf.distribute strategy of a config.TrainConfig.

    Call it before other TensorFlow work: MultiWorkerMirroredStrategy must be created at program
    start-up, before devices are initialised.

    Returns:
      a tf.distribute.Strategy.
    Raises:
      ValueError: when TF_CONFIG is missing or malformed for `multi_worker`.
    """
    name = config.strategy
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(
            devices=list(config.devices) if config.devices else None)
    elif name == "multi_worker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())
    elif name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=config.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    else:
        raise ValueError(f"--strategy must be default, mirrored, multi_worker or tpu, got {name!r}")
    logging.info("--strategy %s: %d replica(s) in sync, %d worker(s), %s", name,
                 strategy.num_replicas_in_sync, worker_count(strategy),
                 "chief" if is_chief(strategy) else "not the chief")
    return strategy


def _check_tf_config(text):
    """Raises ValueError unless `text` is a TF_CONFIG naming a cluster and this process's task."""
    if not text:
        raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable, e.g. "
                         '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    try:
        tf_config = json.loads(text)
    except ValueError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text}") from None
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise ValueError(f"TF_CONFIG has no cluster with workers: {text}")
    if not isinstance(task, dict) or task.get("type") not in cluster \
            or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ValueError(f"TF_CONFIG's task must name a type and index of its cluster: {text}")


def is_chief(strategy):
    """True on the process that writes checkpoints and summaries (always, without a cluster).

    Under MultiWorkerMirroredStrategy that is the task of type "chief", or worker 0 when the
    cluster has no chief.
    """
    return strategy.extended.should_checkpoint


def worker_count(strategy):
    """Returns the number of worker processes training together (1 without a cluster)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1  # a TPU pod is driven by one client process
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(jobs.get("chief", ())) + len(jobs.get("worker", ()))


def scratch_dir(strategy, stage):
    """Creates a local temporary folder for the checkpoints of a worker that is not the chief.

    Every worker must take part in each save (a save may read variables collectively), but only
    the chief's copy is kept: the others write here and the trainer removes the folder.
    """
    resolver = strategy.cluster_resolver
    return tempfile.mkdtemp(prefix=f"srgan_tf-{resolver.task_type}{resolver.task_id}-{stage}-")


def replica_gatherer(strategy):
    """Returns a function that collects small values from every replica of every worker.

    The returned function is a collective: every worker must call it at the same point of the
    program. It takes a list of n floats (this worker's) and returns a float64 numpy array
    [replicas, n], one row per replica in replica order. It is compiled once per n.
    """

    @tf.function
    def gather(local):
        return strategy.gather(strategy.run(tf.identity, args=(local,)), axis=0)

    return lambda values: gather(tf.constant([values], tf.float64)).numpy()


def check_jit_compile(strategy):
    """Raises ValueError when `strategy` cannot run an XLA-compiled replica step.

    TensorFlow keeps the cross-replica sums (gradients, synchronized BatchNorm) inside an XLA
    replica step only when every replica is a GPU; between CPU replicas they need a `merge_call`,
    which XLA cannot compile. One replica on any device is fine.
    """
    if strategy.num_replicas_in_sync == 1:
        return
    devices = strategy.extended.worker_devices
    if not all("GPU" in d.upper() for d in devices):
        raise ValueError(f"--jit_compile with {strategy.num_replicas_in_sync} replicas needs "
                         f"every replica on a GPU (XLA all-reduces between GPUs only), got "
                         f"{', '.join(devices)}")


def synchronize_batch_norm(model):
    """Makes every BatchNormalization layer of `model` use global-batch statistics in training.

    With more than one replica each replica sees only its share of the batch. Keras 3's
    `BatchNormalization(synchronized=True)` all-reduces the sums behind the mean and variance, so
    normalisation and the moving averages are those of the whole global batch, as on one device.
    Without it each replica would normalise with its own share's statistics and, since Keras keeps
    the moving averages as mirrored variables without aggregation, each replica's copy would
    follow its own share and only replica 0's would be saved. Inference is not affected.

    Returns:
      the number of layers changed.
    """
    count = 0
    for layer in model._flatten_layers():  # pylint: disable=protected-access  (no public walk)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count
