"""The train steps: init (generator on MSE) and gan (alternating or shared-forward G and D updates).

Each replica's step body computes its losses over the global batch, applies both optimizers and
reports the count of non-finite gradients (GRADS_BAD); `step_function` compiles them, with XLA
under `config.jit_compile`.
"""

import keras
import tensorflow as tf

from srgan_tf import losses

GRADS_BAD = "nonfinite_grads"  # step output: gradient tensors with a NaN/inf (not logged as a loss)


def _count_nonfinite(grads, optimizer):
    """Number of gradient tensors holding a NaN or an infinity, as float32 (summed over replicas).

    Under float16 loss scaling an overflow is expected now and then (the optimizer skips that
    update and lowers the scale): not counted.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.constant(0.0)
    return tf.add_n([1.0 - tf.cast(tf.reduce_all(tf.math.is_finite(g)), tf.float32)
                     for g in grads if g is not None])


class TrainSteps:
    """The Trainer's train steps: per-replica step bodies and the compiled step around them.

    A mixin of `loop.Trainer`, which sets the attributes they use: generator, discriminator, vgg,
    both optimizers, recipe, config, strategy, is_gan and `_step_fn` (None until compiled).
    """

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.recipe.batch_size)

    def _init_replica_step(self, lr, hr):
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=not self.recipe.init_freeze_bn)
            mse = self._average(losses.pixel_loss(hr, sr))
            scaled = self.g_optimizer.scale_loss(mse)  # identity unless float16 loss scaling
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        return {"mse": mse, GRADS_BAD: _count_nonfinite(grads, self.g_optimizer)}

    def _generator_loss(self, hr, hr_features, sr, fake_logits):
        """The generator's loss terms.

        Args:
          hr: float32 [b, H, W, 3] in [-1, 1], this replica's HR batch.
          hr_features: VGG features of `hr`.
          sr: float [b, H, W, 3] in [-1, 1], the generator's output.
          fake_logits: float [b, 1], the discriminator's logits of `sr`.
        Returns:
          dict of scalar float32 averaged over the global batch: g_loss, mse, vgg, adv.
        """
        recipe = self.recipe
        mse = self._average(losses.pixel_loss(hr, sr))
        vgg = self._average(losses.perceptual_loss(hr_features, self.vgg(sr),
                                                   recipe.feature_scale))
        adv = self._average(losses.generator_adversarial_loss(fake_logits))
        g_loss = (recipe.pixel_weight * mse + recipe.perceptual_weight * vgg
                  + recipe.adversarial_weight * adv)
        return {"g_loss": g_loss, "mse": mse, "vgg": vgg, "adv": adv}

    def _gan_outputs(self, g_terms, d_loss, real_logits, fake_logits, g_grads, d_grads):
        """The gan step's dict: losses, the nonfinite-gradient count and D's mean outputs."""
        batch = tf.cast(tf.shape(real_logits)[0], tf.float32) * self.strategy.num_replicas_in_sync
        return {**g_terms, "d_loss": d_loss,
                GRADS_BAD: (_count_nonfinite(g_grads, self.g_optimizer)
                            + _count_nonfinite(d_grads, self.d_optimizer)),
                "d_real": tf.reduce_sum(tf.sigmoid(tf.cast(real_logits, tf.float32))) / batch,
                "d_fake": tf.reduce_sum(tf.sigmoid(tf.cast(fake_logits, tf.float32))) / batch}

    def _gan_replica_step(self, lr, hr):
        """One stage-gan update of both networks on this replica's batch (see Recipe.gan_update)."""
        if self.recipe.gan_update == "shared":
            return self._shared_gan_step(lr, hr)
        return self._alternating_gan_step(lr, hr)

    def _alternating_gan_step(self, lr, hr):
        """A discriminator update, then a generator update through the updated discriminator.

        As TensorLayer's main.py runs d_optim then g_optim on each batch, every pass is in
        training mode: each BatchNorm normalises with the batch's statistics and updates its
        moving averages in both passes (the generator's twice, with the same statistics since
        its weights do not change in between; the discriminator's on HR and SR in the D step,
        then on SR again in the G step). Each tape differentiates only the weights its optimizer
        updates.
        """
        hr_features = tf.stop_gradient(self.vgg(hr))  # once per step, no gradient
        g_training = not self.recipe.gan_freeze_bn  # G has no dropout: only BN statistics
        d_weights = self.discriminator.trainable_variables
        g_weights = self.generator.trainable_variables
        # Discriminator step: G's output is an input here, no gradient reaches G.
        sr = tf.stop_gradient(self.generator(lr, training=g_training))
        with tf.GradientTape() as d_tape:
            real_logits = self.discriminator(hr, training=True)
            fake_logits = self.discriminator(sr, training=True)
            d_loss = self._average(losses.discriminator_loss(real_logits, fake_logits))
            d_scaled = self.d_optimizer.scale_loss(d_loss)  # identity unless float16
        d_grads = d_tape.gradient(d_scaled, d_weights)
        self.d_optimizer.apply(d_grads, d_weights)
        # Generator step: a fresh forward pass through the updated discriminator. The gradient
        # flows through D's activations, but only G's weights get a gradient and an update.
        with tf.GradientTape() as g_tape:
            sr = self.generator(lr, training=g_training)
            g_terms = self._generator_loss(hr, hr_features, sr,
                                           self.discriminator(sr, training=True))
            g_scaled = self.g_optimizer.scale_loss(g_terms["g_loss"])
        g_grads = g_tape.gradient(g_scaled, g_weights)
        self.g_optimizer.apply(g_grads, g_weights)
        return self._gan_outputs(g_terms, d_loss, real_logits, fake_logits, g_grads, d_grads)

    def _shared_gan_step(self, lr, hr):
        """Both updates from one forward pass (what the TensorLayer 2 rewrite does)."""
        hr_features = tf.stop_gradient(self.vgg(hr))  # once per step, no gradient
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # The generator has no dropout: `training` only selects its BatchNorm statistics.
            sr = self.generator(lr, training=not self.recipe.gan_freeze_bn)
            real_logits = self.discriminator(hr, training=True)
            fake_logits = self.discriminator(sr, training=True)
            d_loss = self._average(losses.discriminator_loss(real_logits, fake_logits))
            g_terms = self._generator_loss(hr, hr_features, sr, fake_logits)
            g_scaled = self.g_optimizer.scale_loss(g_terms["g_loss"])  # identity unless float16
            d_scaled = self.d_optimizer.scale_loss(d_loss)
        # The generator update reads the discriminator's gradient through D(sr) but only
        # changes G's weights; both are computed before either network changes.
        g_grads = g_tape.gradient(g_scaled, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.discriminator.trainable_variables)
        self.g_optimizer.apply(g_grads, self.generator.trainable_variables)
        self.d_optimizer.apply(d_grads, self.discriminator.trainable_variables)
        return self._gan_outputs(g_terms, d_loss, real_logits, fake_logits, g_grads, d_grads)

    def step_function(self):
        """Returns the compiled train step: (lr, hr) distributed batch -> dict of scalar tensors.

        With `config.jit_compile`, each replica's step (forward, backward, optimizer update) is
        compiled with XLA: the function given to `strategy.run` is the XLA one, as TensorFlow
        requires for MirroredStrategy (see `distribute.check_jit_compile`). TPUStrategy compiles
        every step with XLA anyway.
        """
        if self._step_fn is None:
            replica_step = self._gan_replica_step if self.is_gan else self._init_replica_step
            strategy = self.strategy
            if self.config.jit_compile and not isinstance(strategy, tf.distribute.TPUStrategy):
                replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

            def train_step(lr, hr):
                per_replica = strategy.run(replica_step, args=(lr, hr))
                return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                        for k, v in per_replica.items()}

            self._step_fn = tf.function(train_step, reduce_retracing=True)
        return self._step_fn
