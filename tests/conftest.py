"""Shared fixtures: tiny recipes, small image folders, paths to the shared benchmark images."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from srgan_tf import Generator
# Under CI=true a skipped test fails the run (tests/ci_skips.py).
from tests.ci_skips import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401


REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"



def shared_dir(name):
    """Returns ../shared/data/<name>, or skips the test with the reason when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not found: the shared benchmark images sit beside the project root")
    return path


def lively_generator(seed=0, **kwargs):
    """A tiny Generator whose weights give outputs spread over (-1, 1).

    The recipe's N(0, 0.02) init makes a 1-block generator output ~1e-3 everywhere, which any
    broken export would match; these fan-in-scaled weights make every comparison meaningful.
    """
    generator = Generator(num_feat=8, num_block=1, upsample_feat=32, **kwargs)
    generator(tf.zeros([1, 8, 8, 3]))
    rng = np.random.default_rng(seed)
    for variable in generator.weights:
        name, shape = variable.path.split("/")[-1], tuple(variable.shape)
        if name == "kernel":
            value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
        elif name == "gamma":
            value = 1.0 + rng.normal(0.0, 0.1, shape)
        elif name == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        else:  # bias, beta, moving_mean, PReLU alpha
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype(np.float32))
    return generator


@pytest.fixture
def tiny_recipe():
    """A recipe small enough for CPU tests: 1 block, 8 features, 32x32 HR crops, batch 2."""
    from srgan_tf.config import Recipe
    return Recipe(num_feat=8, num_block=1, upsample_feat=32, disc_feat=4, crop_size=32,
                  batch_size=2, vgg_input_size=32)


@pytest.fixture(scope="session")
def vgg_random():
    """VGG19 with random weights, built once per session."""
    import keras
    return keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))


def write_images(folder, sizes, seed=0):
    """Writes real-photo crops of data/sample (one per size) as PNGs into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(SAMPLE_DIR.glob("*.png")) + sorted(SAMPLE_DIR.glob("*.jpg"))
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        with Image.open(photos[i % len(photos)]) as photo:
            photo = photo.convert("RGB")
            y = int(rng.integers(0, photo.height - h + 1))
            x = int(rng.integers(0, photo.width - w + 1))
            path = folder / f"img{i:02d}.png"
            photo.crop((x, y, x + w, y + h)).save(path)
            paths.append(path)
    return paths


@pytest.fixture
def image_dir(tmp_path):
    """A folder of 6 small real-photo PNGs (48x56 .. 64x64)."""
    write_images(tmp_path / "hr", [(48, 56), (64, 64), (56, 48), (64, 60), (52, 64), (60, 52)])
    return tmp_path / "hr"
