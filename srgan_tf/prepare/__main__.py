"""`python -m srgan_tf.prepare`: the command line of srgan_tf/cli/prepare.py."""
from srgan_tf.cli.prepare import __doc__, run  # absl prints the __main__ docstring as usage

run()
