"""Exports a trained generator for TF Serving: `python export.py --checkpoint_dir RUN --export_dir DIR`."""

from srgan_tf.cli.export import run

if __name__ == "__main__":
    run()
