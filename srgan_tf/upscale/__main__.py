"""`python -m srgan_tf.upscale`: the command line of srgan_tf/cli/upscale.py."""
from srgan_tf.cli.upscale import __doc__, run  # absl prints the __main__ docstring as usage

run()
