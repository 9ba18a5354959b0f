"""x4 upscaling of images of any size: model wrappers, tiled inference, alpha, streaming PNG.

A *super-resolver* here is any callable `sr_fn(lr_u8) -> sr_u8` mapping uint8 [h, w, 3] to uint8
[4h, 4w, 3]. `SuperResolver` makes one of a Keras generator (`keras_resolver`), a SavedModel
written by export.py (`saved_model_resolver`) or bicubic upsampling (`bicubic_resolver`).
Evaluation calls it on whole images; this module also calls it tile by tile.

An image of at most WHOLE_IMAGE_PIXELS runs whole; a larger one is tiled (`resolve_tile`).
Tiling is crop-and-stitch in LR space: the model runs on windows of `tile` x `tile` LR pixels
and of each window's output only the core is kept, the part at least `overlap` LR pixels away
from any window edge inside the image. When `overlap` covers the generator's receptive radius
(`serving.receptive_radius`; `load_resolver` returns it with the model) the stitched image equals
whole-image inference (up to float rounding, <= 1/255), so there is no seam to hide. Output is
produced one row of tiles at a time and PNG is written as a stream, so peak memory depends on
the tile size, not on the image size.

Images with alpha are upscaled premultiplied: the model sees colour times alpha, alpha is
upscaled with bicubic, and the colour is divided by the upscaled alpha again, so transparent
pixels lend no colour to the edges. Outputs keep the input's ICC profile and EXIF (orientation
applied to the pixels) and are marked as outputs (`image_files.is_output`).

`python -m srgan_tf.upscale IN... --output_dir DIR` runs the CLI (srgan_tf/cli/upscale.py). The
names below load on first use (srgan_tf/facade.py), so the CLI parses its flags and checks its
paths before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "resolvers": (
        "RADIUS_LIMIT", "RADIUS_TOLERANCE", "SuperResolver", "keras_resolver",
        "saved_model_resolver", "bicubic_resolver", "measured_radius", "load_resolver",),
    "tiling": (
        "DEFAULT_TILE", "WHOLE_IMAGE_PIXELS", "DEFAULT_OVERLAP", "ALPHA_CONTEXT", "_windows",
        "count_tiles", "resolve_tile", "premultiply", "unpremultiply", "check_tiling",
        "upscale_alpha_rows", "upscale_bands", "upscale_array",),
    "png": (
        "PngStreamWriter",),
    "image_io": (
        "MIN_CORE", "INPUT_EXTENSIONS", "_NO_ALPHA_FORMATS", "_NO_GRAY_FORMATS", "_GRAY_MODES",
        "read_image", "_gray_u8", "_output_pixels", "output_mode", "_write_image", "upscale_file",
        "DEFAULT_MAX_INPUT_PIXELS", "DEFAULT_SUFFIX", "FORMATS", "list_inputs", "output_path",),
})
