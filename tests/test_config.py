"""The recipes' schedules: totals and decay points of each preset, and what overrides them."""

import pytest

from srgan_tf.config import Recipe, TrainConfig


def _total(recipe, stage, steps_per_epoch, **kwargs):
    return TrainConfig(stage=stage, checkpoint_dir="run", recipe=recipe,
                       **kwargs).total_steps(steps_per_epoch)


def test_tensorlayer_preset_counts_epochs():
    recipe = Recipe.from_preset("tensorlayer")
    assert (recipe.init_steps, recipe.gan_steps, recipe.decay_steps) == (None, None, None)
    assert _total(recipe, "init", 50) == 100 * 50  # DIV2K: 800 images / batch 16
    assert _total(recipe, "gan", 50) == 2000 * 50
    assert recipe.decay_step(50) == 1000 * 50
    assert recipe.decay_step(0) == 1  # never a zero decay interval


def test_paper_preset_counts_updates():
    recipe = Recipe.from_preset("paper")
    for steps_per_epoch in (1, 50, 21875):  # the totals do not depend on the data
        assert _total(recipe, "init", steps_per_epoch) == 10 ** 6
        assert _total(recipe, "gan", steps_per_epoch) == 2 * 10 ** 5
        assert recipe.decay_step(steps_per_epoch) == 10 ** 5
    assert recipe.learning_rate == 1e-4 and recipe.decay_rate == 0.1


@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
def test_steps_and_epochs_override_either_preset(preset):
    recipe = Recipe.from_preset(preset)
    for stage in ("init", "gan"):
        assert _total(recipe, stage, 50, steps=7) == 7
        assert _total(recipe, stage, 50, epochs=3) == 150
        assert _total(recipe, stage, 50, steps=7, epochs=3) == 7
    # A decay given in epochs (--decay_every) replaces the paper preset's decay in steps.
    assert Recipe.from_preset(preset, decay_every=4).decay_step(50) == 200


@pytest.mark.parametrize("preset", ["tensorlayer", "paper"])
def test_both_presets_alternate_updates(preset):
    assert Recipe.from_preset(preset).gan_update == "alternating"
    assert Recipe.from_preset(preset, gan_update="shared").gan_update == "shared"


def test_bad_gan_update_names_the_flag(image_dir):
    config = TrainConfig(stage="gan", checkpoint_dir="run", hr_dir=str(image_dir),
                         recipe=Recipe(gan_update="both"))
    with pytest.raises(ValueError, match="--gan_update must be one of alternating, shared, "
                                         "got 'both'"):
        config.validate()
