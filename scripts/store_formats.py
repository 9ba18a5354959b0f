"""Patches/s of the two ways to read a raw whole-image store, through tf.data (a measurement).

  python scripts/store_formats.py RAW_DIR     # RAW_DIR: 16 raw 2040x1356 images 00.u8 .. 15.u8

Compares, at crop 384, batch 16, with the batched bicubic x4 after `batch`: reading the whole
raw image (tf.io.read_file + tf.io.decode_raw) for 1 or 4 crops, reading only the crop's rows
(os.pread in tf.numpy_function), the same without the bicubic, and the bicubic alone.
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf

H, W, C, B = 1356, 2040, 384, 16
RAW = sys.argv[1]
PATHS = tf.constant([os.path.join(RAW, f"{i:02d}.u8") for i in range(16)])


def rate(ds, n=20):
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    for _ in range(n):
        next(it)
    return n * B / (time.perf_counter() - start)


def offsets(k):
    s = tf.random.experimental.stateless_split(tf.stack([tf.constant(0, tf.int64), k]), 2)
    y = tf.random.stateless_uniform([], s[0], 0, (H - C) // 4 + 1, dtype=tf.int32) * 4
    x = tf.random.stateless_uniform([], s[1], 0, (W - C) // 4 + 1, dtype=tf.int32) * 4
    return y, x


def whole(k, n=1):
    image = tf.reshape(tf.io.decode_raw(tf.io.read_file(PATHS[k % 16]), tf.uint8), [H, W, 3])
    crops = []
    for j in range(n):
        y, x = offsets(k * n + j)
        crops.append(image[y:y + C, x:x + C])
    return tf.stack(crops)


def pread_crop(i, y, x):
    fd = os.open(os.path.join(RAW, f"{int(i):02d}.u8"), os.O_RDONLY)
    try:
        band = os.pread(fd, C * W * 3, int(y) * W * 3)
    finally:
        os.close(fd)
    return np.frombuffer(band, np.uint8).reshape(C, W, 3)[:, x:x + C]


def rows(k):
    y, x = offsets(k)
    return tf.ensure_shape(tf.numpy_function(pread_crop, [k % 16, y, x], tf.uint8), [C, C, 3])


def bicubic(hr):
    hr = tf.cast(hr, tf.float32) / 127.5 - 1
    return tf.image.resize(hr, [C // 4, C // 4], method="bicubic", antialias=True), hr


A = tf.data.AUTOTUNE
base = tf.data.Dataset.counter()
print("whole raw read, 1 crop", rate(base.map(whole, A).unbatch().batch(B).map(bicubic, A)
                                     .prefetch(A)))
print("whole raw read, 4 crops", rate(base.map(lambda k: whole(k, 4), A).unbatch().batch(B)
                                      .map(bicubic, A).prefetch(A)))
print("crop rows (pread)", rate(base.map(rows, A).batch(B).map(bicubic, A).prefetch(A)))
print("crop rows, uint8 only", rate(base.map(rows, A).batch(B).prefetch(A)))
zeros = tf.zeros([B, C, C, 3], tf.uint8)
print("bicubic alone", rate(tf.data.Dataset.from_tensors(zeros).repeat().map(bicubic, A)
                            .prefetch(A)))
