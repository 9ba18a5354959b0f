"""`python -m srgan_tf.reference`: the command line of srgan_tf/cli/reference.py."""
from srgan_tf.cli.reference import __doc__, run  # absl prints the __main__ docstring as usage

run()
