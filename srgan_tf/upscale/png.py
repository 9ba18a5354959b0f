"""A PNG encoder that writes row bands as they come, so a large output never sits in memory."""

import struct
import zlib

import numpy as np


class PngStreamWriter:
    """Writes an 8-bit PNG row band by row band, so the whole image never sits in memory.

    Rows are Paeth-filtered and deflated into one zlib stream split over IDAT chunks.

    Args:
      path: output file.
      width, height: image size in pixels.
      channels: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA).
      icc_profile: optional ICC profile bytes, written as an iCCP chunk.
      exif: optional EXIF bytes (with or without the "Exif\\0\\0" prefix), written as an eXIf
        chunk before the pixels.
    """

    _COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}

    def __init__(self, path, width, height, channels, icc_profile=None, exif=None):
        if channels not in self._COLOR_TYPES:
            raise ValueError(f"PNG channels must be 1-4, got {channels}")
        self.width, self.height, self.channels = width, height, channels
        self.rows_written = 0
        self._previous = np.zeros([width * channels], np.uint8)
        self._deflate = zlib.compressobj(6)
        self._file = open(path, "wb")  # pylint: disable=consider-using-with
        self._file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                         self._COLOR_TYPES[channels], 0, 0, 0))
        if icc_profile:
            self._chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))
        if exif:
            self._chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)

    def _chunk(self, kind, data):
        self._file.write(struct.pack(">I", len(data)) + kind + data)
        self._file.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def _paeth(self, rows):
        """Filters uint8 [n, width * channels] rows with PNG filter 4 (Paeth); returns bytes."""
        above = np.concatenate([self._previous[None], rows[:-1]]).astype(np.int16)
        current = rows.astype(np.int16)
        left = np.zeros_like(current)
        left[:, self.channels:] = current[:, :-self.channels]
        upper_left = np.zeros_like(current)
        upper_left[:, self.channels:] = above[:, :-self.channels]
        pa, pb = np.abs(above - upper_left), np.abs(left - upper_left)
        pc = np.abs(left + above - 2 * upper_left)
        predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
        filtered = ((current - predictor) & 0xFF).astype(np.uint8)
        framed = np.concatenate([np.full([len(rows), 1], 4, np.uint8), filtered], axis=1)
        self._previous = rows[-1].copy()
        return framed.tobytes()

    def write(self, band):
        """Appends rows: uint8 [n, width, channels] (or [n, width] for one channel)."""
        band = np.asarray(band, dtype=np.uint8).reshape(len(band), -1)
        if band.shape[1] != self.width * self.channels:
            raise ValueError(f"PNG rows must hold {self.width}x{self.channels} values, "
                             f"got {band.shape[1]}")
        if self.rows_written + len(band) > self.height:
            raise ValueError(f"PNG is {self.height} rows high, got {self.rows_written + len(band)}")
        for start in range(0, len(band), 64):  # bounds the int16 temporaries
            data = self._deflate.compress(self._paeth(band[start:start + 64]))
            if data:
                self._chunk(b"IDAT", data)
        self.rows_written += len(band)

    def close(self):
        """Finishes the file; raises ValueError if fewer rows than the height were written."""
        if self._file.closed:
            return
        try:
            if self.rows_written != self.height:
                raise ValueError(f"PNG is {self.height} rows high, "
                                 f"only {self.rows_written} written")
            self._chunk(b"IDAT", self._deflate.flush())
            self._chunk(b"IEND", b"")
        finally:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self._file.close()
