"""`python -m srgan_tf.bench`: the command line of srgan_tf/cli/bench.py."""
from srgan_tf.cli.bench import __doc__, run  # absl prints the __main__ docstring as usage

run()
