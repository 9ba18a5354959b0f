"""`python -m srgan_tf.gpu_check`: the command line of srgan_tf/cli/gpu_check.py."""
from srgan_tf.cli.gpu_check import __doc__, run  # absl prints the __main__ docstring as usage

run()
