"""Installs srgan_tf: SRGAN x4 super-resolution in TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
    name="srgan_tf",
    version="0.1.0",
    description="SRGAN (Ledig et al. 2017) x4 super-resolution in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["srgan_tf", "srgan_tf.*"]),
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.16",  # first release that ships Keras 3
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "numpy",
        "pillow>=9.1",
        "absl-py",
        "tensorboard",  # tf.summary's scalar/image ops; TF 2.21 no longer installs it
    ],
    extras_require={
        "test": ["pytest"],
        # Warm-up request protos and the gRPC client; must match the installed TensorFlow
        # (tensorflow-serving-api 2.21 requires tensorflow>=2.21,<3). Export works without it.
        "serving": ["tensorflow-serving-api>=2.16"],
        "plots": ["matplotlib"],  # training curves of the reference run (srgan_tf/plots.py)
        # The PyTorch SRResNet timed beside ours (benchmarks/peer_srresnet.py); on CPU-only
        # machines install the CPU build (e.g. pip install torch==2.13.0 where it is on disk).
        "peers": ["torch>=2.1"],
    },
    entry_points={
        "console_scripts": [
            "srgan-train=srgan_tf.cli.train:run",
            "srgan-evaluate=srgan_tf.cli.evaluate:run",
            "srgan-upscale=srgan_tf.cli.upscale:run",
            "srgan-export=srgan_tf.cli.export:run",
            "srgan-bench=srgan_tf.cli.bench:run",
            "srgan-prepare=srgan_tf.cli.prepare:run",
        ],
    },
)
