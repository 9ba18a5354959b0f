"""Trains SRGAN: `python train.py --stage init ...`, then `python train.py --stage gan ...`."""

from srgan_tf.cli.train import run

if __name__ == "__main__":
    run()
