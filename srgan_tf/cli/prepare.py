"""`python -m srgan_tf.prepare`: decode training images once into a store for `train.py --store`.

  python -m srgan_tf.prepare --hr_dir DIV2K_train_HR --output div2k_store
  python -m srgan_tf.prepare --tfds div2k/bicubic_x4 --output div2k_store
"""

from absl import flags

from srgan_tf.cli import common

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags of the store writer."""
    flags.DEFINE_string("hr_dir", None, "Folder of HR training images (searched recursively).")
    flags.DEFINE_string("tfds", None, "tensorflow-datasets DIV2K config, e.g. div2k/bicubic_x4.")
    flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir (default "
                        "~/tensorflow_datasets).")
    flags.DEFINE_string("output", None, "Store folder to create.")
    flags.DEFINE_integer("min_size", 384, "Images with a side below this are skipped; the store "
                         "serves --crop_size up to its smallest image.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output store.")
    flags.DEFINE_integer("workers", None, "Decoding threads (default: the CPU count).")
    flags.mark_flags_as_required(["output"])


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from srgan_tf import prepare  # pylint: disable=import-outside-toplevel
    try:
        prepare.write_store(FLAGS.output, hr_dir=FLAGS.hr_dir, tfds=FLAGS.tfds,
                            tfds_data_dir=FLAGS.tfds_data_dir, min_size=FLAGS.min_size,
                            overwrite=FLAGS.overwrite, workers=FLAGS.workers)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        common.fail(str(e))


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
