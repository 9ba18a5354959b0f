"""`python -m srgan_tf.evaluate`: the command line of srgan_tf/cli/evaluate.py."""
from srgan_tf.cli.evaluate import __doc__, run  # absl prints the __main__ docstring as usage

run()
