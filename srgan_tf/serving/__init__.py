"""SavedModel export for TF Serving, plus `.keras` and TFLite copies of the generator.

The SavedModel is built from a plain `tf.Module` with explicit input signatures, so a bare
`tensorflow/serving` container (no Python, no Keras, no srgan_tf) can load it. It has two
signatures:

* ``serving_default``: ``images`` float32 [N, H, W, 3] in [0, 1] -> ``sr_images`` float32
  [N, 4H, 4W, 3] in [0, 1] (clipped). Inputs outside [0, 1] or NaN are an ``InvalidArgument``
  error naming the range.
* ``upscale_image``: ``image_bytes`` string [N] of encoded PNG/JPEG/BMP/GIF -> ``sr_image_bytes``
  string [N] of x4 PNG (or JPEG) bytes. TF Serving's REST API base64-encodes tensors whose name ends
  in ``_bytes`` (``{"b64": ...}``) in both directions.

Both process one image at a time, in LR tiles of ``tile_size`` pixels with a margin of at least
the generator's receptive radius (crop-and-stitch, so tiled output equals untiled output), and
reject images of more than ``max_input_pixels`` with an ``InvalidArgument`` error. Encoded images
are measured from their header before they are decoded, so an oversized upload never gets decoded.

A version is written to a temporary directory next to its final place and renamed into
``export_dir/<version>`` only once complete and checked, so TF Serving (which polls
``export_dir`` for numeric subdirectories) never sees a half-written version.

The package is split by concern: `module` (the tf.Module and its signatures), `headers` (image
size from encoded bytes), `warmup` (warm-up requests), `tflite` and `exporter` (`export` and its
checks). Its names load on first use (srgan_tf/facade.py).
"""

from srgan_tf import facade

facade.export(__name__, {
    "module": (
        "SIGNATURE_FLOAT", "SIGNATURE_BYTES", "FLOAT_INPUT", "FLOAT_OUTPUT", "BYTES_INPUT",
        "BYTES_OUTPUT", "OUTPUT_FORMATS", "ServingConfig", "receptive_radius", "_tile_layout",
        "upscale_tiled", "_text", "_checked", "_backend_variable", "SuperResolutionModule",),
    "headers": (
        "_little_endian", "_big_endian", "_starts_with", "encoded_image_size",),
    "warmup": (
        "WARMUP_FILE", "WARMUP_SIZE", "sample_image", "_varint", "_field", "predict_log_bytes",
        "write_warmup_requests",),
    "tflite": (
        "TFLITE_FILE", "TFLITE_TOLERANCE", "tflite_model", "tflite_interpreter", "check_tflite",
        "_convert_tflite",),
    "exporter": (
        "EXTRA_FORMATS", "KERAS_FILE", "CHECK_TOLERANCE", "next_version", "_listdir",
        "run_like_tf_serving", "check_saved_model", "export", "_check_keras",),
})
