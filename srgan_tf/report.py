"""An HTML comparison report of an evaluation: one folder, `index.html` plus its PNG images.

The page works from disk in any browser, with no network: plain HTML, CSS and a few lines of
JavaScript written here. It shows the run's header, a score table per set with the best value of
each column marked, and for every image a comparison with a draggable divider (bicubic, each
model, HR), zoomed crops where each model differs most from bicubic, and the image's scores.

The writer takes what the evaluator produced (its result dicts and, per image, the HR, bicubic and
SR arrays) and knows nothing about models, flags or how the scores were computed.
"""

import datetime
import html
import math
import os
import shutil
import tempfile
import urllib.parse

import numpy as np
from absl import logging
from PIL import Image

INDEX = "index.html"
IMAGES = "images"  # subfolder of the report holding every PNG
BICUBIC, HR = "bicubic", "HR"
PREVIEW_SIDE = 1024  # longest side of a comparison image; larger images get a downscaled preview
MIN_DISPLAY_WIDTH = 480  # narrower images are shown enlarged by an integer factor (pixelated)
CROP_SIDE = 96  # side of the full-resolution crop where a model differs most from bicubic (HR px)
CROP_ZOOM = 3  # display magnification of the crops (nearest neighbour)

# Score key -> (column header, format, which value is best: "max", "min" or "one" = closest to 1).
COLUMNS = {
    "psnr_y": ("PSNR-Y (dB)", "{:.2f}", "max"),
    "ssim_y": ("SSIM-Y", "{:.4f}", "max"),
    "psnr_rgb": ("PSNR-RGB (dB)", "{:.2f}", "max"),
    "color_shift": ("colour shift", "{:.2f}", "min"),
    "hf_ratio": ("HF energy SR/HR", "{:.3f}", "one"),
    "checkerboard": ("checkerboard", "{:.3f}", "min"),
}


def check_destination(path, overwrite=False):
    """Raises unless a report may be written to the folder `path`.

    A missing or empty folder is fine; an earlier report (a folder holding index.html) is replaced
    only with `overwrite`; any other non-empty folder or a file is never replaced.

    Raises:
      FileExistsError / ValueError: naming --report and the path.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--report {path} is a file, not a folder")
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.isfile(os.path.join(path, INDEX)):
            raise ValueError(f"--report {path} is a non-empty folder without {INDEX}, not a report:"
                             " choose another folder")
        if not overwrite:
            raise FileExistsError(f"--report {path} already holds a report: pass --overwrite to "
                                  "replace it")


def largest_difference_window(a_u8, b_u8, side=CROP_SIDE, margin=0):
    """Finds the square window where two images differ most (largest mean |a - b|).

    Args:
      a_u8, b_u8: uint8 [H, W, C] in [0, 255], same shape.
      side: window side in pixels; clipped to the image's smaller side.
      margin: pixels along each edge left out of the search (a border the scores ignore),
        unless the image is too small to keep anything.
    Returns:
      (top, left, side) of the window in the whole image, ints; the first one found on ties.
    """
    diff = np.abs(a_u8.astype(np.int16) - b_u8.astype(np.int16)).mean(axis=-1)
    if min(diff.shape) <= 2 * margin:
        margin = 0
    diff = diff[margin:diff.shape[0] - margin, margin:diff.shape[1] - margin]
    side = int(min(side, diff.shape[0], diff.shape[1]))
    table = np.pad(diff.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))  # summed-area table
    sums = (table[side:, side:] - table[:-side, side:] - table[side:, :-side]
            + table[:-side, :-side])
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top) + margin, int(left) + margin, side


def _format(key, value):
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return COLUMNS[key][1].format(value)


def _best(key, values):
    """Returns the indices of the best of `values` (None entries ignored) for column `key`."""
    how = COLUMNS[key][2]
    present = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not present:
        return set()
    if how == "one":
        ranked = [(i, abs(math.log(v)) if v > 0 else math.inf) for i, v in present]
        target = min(r for _, r in ranked)
        return {i for i, r in ranked if r == target}
    target = (max if how == "max" else min)(v for _, v in present)
    return {i for i, v in present if v == target}


def _url(name):
    return html.escape(f"{IMAGES}/{urllib.parse.quote(name)}")


def _save(image_u8, path):
    Image.fromarray(np.asarray(image_u8, np.uint8)).save(path, format="PNG")


class ReportWriter:
    """Collects an evaluation's images and scores, then writes the report folder.

    Images are written as they arrive into a hidden folder beside the destination, which replaces
    the destination only when `write` finishes; `discard` removes it after a failure.
    """

    def __init__(self, path, overwrite=False, margin=0):
        """Checks the destination (see `check_destination`) and opens the staging folder.

        Args:
          path: the report folder.
          overwrite: replace an earlier report there.
          margin: border (pixels) the crop windows stay out of: the one the scores ignore.
        """
        check_destination(path, overwrite)
        self.path, self.overwrite, self.margin = path, overwrite, margin
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self._staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.",
                                         dir=parent)
        os.makedirs(os.path.join(self._staging, IMAGES))
        self._sets = {}  # set name -> {image name -> entry dict}
        self._labels = []  # model labels in order of arrival

    def _image_file(self, name, image_u8):
        _save(image_u8, os.path.join(self._staging, IMAGES, name))
        return name

    def _preview_file(self, name, image_u8):
        """Writes the comparison image, downscaled to PREVIEW_SIDE when larger."""
        image = Image.fromarray(np.asarray(image_u8, np.uint8))
        scale = PREVIEW_SIDE / max(image.size)
        if scale < 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        image.save(os.path.join(self._staging, IMAGES, name), format="PNG")
        return name

    def add_image(self, set_name, image_name, hr_u8, bicubic_u8, label=None, sr_u8=None):
        """Adds one image of a set: its HR and bicubic pictures, and one model's output.

        The HR and bicubic pictures are written the first time an image is seen; call again
        (with the same HR and bicubic) for each model's `label` and `sr_u8`.

        Args:
          set_name, image_name: the set and file name the scores are filed under.
          hr_u8, bicubic_u8: uint8 [H, W, 3] in [0, 255], the HR image and its bicubic x4.
          label: the model's name as in the results given to `write`; None for none.
          sr_u8: uint8 [H, W, 3] in [0, 255], that model's output.
        """
        images = self._sets.setdefault(set_name, {})
        entry = images.get(image_name)
        if entry is None:
            stem = f"{len(self._sets) - 1:02d}-{len(images):03d}"
            height, width = hr_u8.shape[:2]
            entry = images[image_name] = {
                "stem": stem, "size": (height, width), "crops": {},
                "views": {BICUBIC: self._preview_file(f"{stem}-bicubic.png", bicubic_u8),
                          HR: self._preview_file(f"{stem}-hr.png", hr_u8)}}
            with Image.open(os.path.join(self._staging, IMAGES, entry["views"][HR])) as preview:
                entry["preview"] = (preview.height, preview.width)
        if label is None:
            return
        if label not in self._labels:
            self._labels.append(label)
        key = f"{entry['stem']}-m{self._labels.index(label)}"
        entry["views"][label] = self._preview_file(f"{key}.png", sr_u8)
        top, left, side = largest_difference_window(sr_u8, bicubic_u8, margin=self.margin)
        window = (slice(top, top + side), slice(left, left + side))
        entry["crops"][label] = {
            "box": (top, left, side),
            "files": {BICUBIC: self._image_file(f"{key}-crop-bicubic.png",
                                                np.asarray(bicubic_u8)[window]),
                      label: self._image_file(f"{key}-crop-sr.png", np.asarray(sr_u8)[window]),
                      HR: self._image_file(f"{key}-crop-hr.png", np.asarray(hr_u8)[window])}}

    def discard(self):
        """Removes the staging folder (after a failure); the destination is left untouched."""
        shutil.rmtree(self._staging, ignore_errors=True)

    def write(self, results, protocol, date=None):
        """Writes index.html and moves the finished report to its destination.

        Args:
          results: {label: {set name: result}} where a result is what `evaluate.evaluate` returns
            for one set: mean scores, optional "bicubic" means, and "images", a list of per-image
            dicts with "name" and scores (and "bicubic_<score>" entries). A label "bicubic" is
            the bicubic baseline evaluated on its own.
          protocol: one line describing how the scores were computed.
          date: datetime of the run; now (UTC) by default.
        Returns:
          the path of the written index.html.
        """
        date = date or datetime.datetime.now(datetime.timezone.utc)
        page = _page(results, self._sets, self._labels, protocol, date)
        with open(os.path.join(self._staging, INDEX), "w", encoding="utf-8") as f:
            f.write(page)
        check_destination(self.path, self.overwrite)  # nothing appeared meanwhile
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)
        os.replace(self._staging, self.path)
        index = os.path.join(self.path, INDEX)
        logging.info("wrote the report %s", index)
        return index


def _methods(results, set_name):
    """Returns [(method name, mean scores, per-image rows by name)] for one set: bicubic first."""
    methods = []
    for label, by_set in results.items():
        result = by_set[set_name]
        rows = {row["name"]: row for row in result["images"]}
        if "bicubic" in result and not any(m[0] == BICUBIC for m in methods):
            baseline = {name: {k[len("bicubic_"):]: v for k, v in row.items()
                               if k.startswith("bicubic_")} for name, row in rows.items()}
            methods.insert(0, (BICUBIC, result["bicubic"], baseline))
        if label == BICUBIC:
            methods.insert(0, (BICUBIC, result, rows))
        else:
            methods.append((label, result, rows))
    return methods


def _table(methods, columns, values_of, css_class):
    """Returns a score table: one row per method, the best value of each column marked."""
    head = "".join(f"<th scope=\"col\">{html.escape(COLUMNS[k][0])}</th>" for k in columns)
    values = [[values_of(m).get(k) for k in columns] for m in methods]
    best = [_best(k, [row[j] for row in values]) for j, k in enumerate(columns)]
    body = []
    for i, (name, _, _) in enumerate(methods):
        cells = []
        for j, key in enumerate(columns):
            value = values[i][j]
            mark = " class=\"best\" title=\"best in this column\"" if i in best[j] else ""
            data = "" if value is None else f" data-value=\"{html.escape(repr(float(value)))}\""
            cells.append(f"<td data-key=\"{key}\"{data}{mark}>{_format(key, value)}</td>")
        body.append(f"<tr data-method=\"{html.escape(name)}\"><th scope=\"row\">"
                    f"{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (f"<table class=\"{css_class}\"><thead><tr><th scope=\"col\">method</th>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def _comparison(entry, labels):
    """Returns the comparison widget of one image: two stacked layers and a divider."""
    views = [BICUBIC] + [label for label in labels if label in entry["views"]] + [HR]
    right = views[1]  # the first model (or HR when there is none)
    height, width = entry["preview"]

    def layer(side, shown):
        imgs = "".join(
            f"<img src=\"{_url(entry['views'][v])}\" alt=\"{html.escape(v)}\" data-view=\"{i}\" "
            f"width=\"{width}\" height=\"{height}\"{'' if v == shown else ' hidden'}>"
            for i, v in enumerate(views))
        return f"<div class=\"layer {side}\">{imgs}</div>"

    boxes = []
    full_h, full_w = entry["size"]
    for label in labels:
        if label in entry["crops"]:
            top, left, side = entry["crops"][label]["box"]
            boxes.append(f"<div class=\"box\" title=\"crop of {html.escape(label)}\" style=\""
                         f"top:{100 * top / full_h:.3f}%;left:{100 * left / full_w:.3f}%;"
                         f"width:{100 * side / full_w:.3f}%;height:{100 * side / full_h:.3f}%\">"
                         f"<span>{html.escape(label)}</span></div>")

    def select(side, shown):
        options = "".join(f"<option value=\"{i}\"{' selected' if v == shown else ''}>"
                          f"{html.escape(v)}</option>" for i, v in enumerate(views))
        return (f"<label>{side} <select class=\"pick\" data-side=\"{side}\">{options}</select>"
                "</label>")

    zoom = max(1, math.ceil(MIN_DISPLAY_WIDTH / width))
    note = ""
    if (height, width) != entry["size"]:
        note = (f"<p class=\"note\">Preview downscaled to {width}×{height}; the crops below are "
                "at full resolution.</p>")
    elif zoom > 1:
        note = f"<p class=\"note\">Shown ×{zoom}.</p>"
    return (f"<div class=\"controls\">{select('left', BICUBIC)} {select('right', right)} "
            "<span class=\"hint\">drag the divider</span></div>"
            f"<div class=\"cmp{' zoomed' if zoom > 1 else ''}\" data-split=\"50\" "
            f"style=\"width:{width * zoom}px\">"
            f"{layer('left', BICUBIC)}{layer('right', right)}{''.join(boxes)}"
            "<div class=\"divider\" role=\"slider\" tabindex=\"0\" aria-label=\"divider\" "
            "aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"50\"></div></div>"
            + note)


def _crops(entry, labels):
    figures = []
    for label in labels:
        crop = entry["crops"].get(label)
        if crop is None:
            continue
        top, left, side = crop["box"]
        imgs = "".join(
            f"<figure><img src=\"{_url(crop['files'][v])}\" alt=\"{html.escape(v)} crop\" "
            f"width=\"{side * CROP_ZOOM}\" height=\"{side * CROP_ZOOM}\">"
            f"<figcaption>{html.escape(v)}</figcaption></figure>" for v in (BICUBIC, label, HR))
        figures.append(f"<div class=\"crop\"><p>Where <b>{html.escape(label)}</b> differs most "
                       f"from bicubic: {side}×{side} px at x={left}, y={top} "
                       f"(shown ×{CROP_ZOOM})</p>"
                       f"<div class=\"row\">{imgs}</div></div>")
    return "".join(figures)


def _page(results, sets, labels, protocol, date):
    set_names = list(next(iter(results.values())))
    models = [label for label in results if label != BICUBIC]
    header_models = ", ".join(models) + " (bicubic as baseline)" if models else "bicubic"
    sections, toc = [], []
    for s, set_name in enumerate(set_names):
        methods = _methods(results, set_name)
        columns = [k for k in COLUMNS if any(k in m[1] for m in methods)]
        images = []
        for name, entry in sets.get(set_name, {}).items():
            row_table = _table(methods, columns, lambda m, n=name: m[2].get(n, {}), "scores image")
            h, w = entry["size"]
            images.append(f"<article class=\"image\" id=\"img-{entry['stem']}\"><h3>"
                          f"{html.escape(name)} <small>{w}×{h}</small></h3>"
                          f"{_comparison(entry, labels)}{_crops(entry, labels)}{row_table}"
                          "</article>")
        count = next(iter(results.values()))[set_name]["num_images"]
        toc.append(f"<a href=\"#set-{s}\">{html.escape(set_name)}</a> ({count} images)")
        sections.append(f"<section class=\"set\" id=\"set-{s}\"><h2>{html.escape(set_name)}</h2>"
                        f"{_table(methods, columns, lambda m: m[1], 'scores set')}"
                        f"<p class=\"legend\">Means over {count} images; the best value of each "
                        f"column is highlighted.</p>{''.join(images)}</section>")
    title = f"SR report: {', '.join(models) or 'bicubic'} on {', '.join(set_names)}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Super-resolution report</h1>
<dl>
<dt>Models</dt><dd>{html.escape(header_models)}</dd>
<dt>Data sets</dt><dd>{", ".join(toc)}</dd>
<dt>Protocol</dt><dd>{html.escape(protocol)}</dd>
<dt>Date</dt><dd>{html.escape(date.strftime("%Y-%m-%d %H:%M UTC"))}</dd>
</dl>
</header>
<main>
{"".join(sections)}
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""


_CSS = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0; }
header dt { font-weight: 600; }
header dd { margin: 0; }
h2 { border-bottom: 2px solid #ccc; margin-top: 1.5em; }
h3 small { color: #777; font-weight: normal; }
table.scores { border-collapse: collapse; margin: .5em 0; }
table.scores th, table.scores td { border: 1px solid #ccc; padding: .2em .6em; text-align: right; }
table.scores th[scope=row] { text-align: left; }
table.scores td.best { background: #d8f5d0; font-weight: 700; }
p.legend, p.note, .hint { color: #666; font-size: .9em; }
article.image { margin: 1.5em 0 2.5em; }
.controls { margin: .3em 0; }
.cmp { position: relative; user-select: none; touch-action: none; cursor: ew-resize;
       --split: 50%; line-height: 0; }
.cmp { max-width: 100%; }
.cmp img { display: block; width: 100%; height: auto; }
.cmp.zoomed img { image-rendering: pixelated; }
.cmp img[hidden] { display: none; }
.cmp .layer.right { position: absolute; inset: 0; clip-path: inset(0 0 0 var(--split)); }
.cmp .divider { position: absolute; top: 0; bottom: 0; left: var(--split); width: 0;
                border-left: 2px solid #fff; box-shadow: 0 0 3px #000; }
.cmp .divider::after { content: ""; position: absolute; top: 50%; left: -10px; width: 16px;
                       height: 16px; margin-top: -10px; border: 2px solid #fff;
                       border-radius: 50%; background: rgba(0, 0, 0, .4); }
.cmp .divider:focus { outline: 2px solid #39f; }
.cmp .box { position: absolute; outline: 2px dashed #ff0; pointer-events: none; }
.cmp .box span { position: absolute; left: 0; bottom: 0; font-size: 11px; line-height: 1.2;
                 padding: 0 2px; color: #000; background: rgba(255, 255, 0, .8);
                 white-space: nowrap; }
.crop .row { display: flex; flex-wrap: wrap; gap: .5em; }
.crop figure { margin: 0; }
.crop img { image-rendering: pixelated; display: block; }
.crop figcaption { text-align: center; font-size: .9em; }
"""

_SCRIPT = """
document.querySelectorAll('.cmp').forEach(function (cmp) {
  var divider = cmp.querySelector('.divider');
  var dragging = false;
  function setSplit(percent) {
    percent = Math.max(0, Math.min(100, percent));
    cmp.style.setProperty('--split', percent + '%');
    cmp.dataset.split = percent.toFixed(1);
    divider.setAttribute('aria-valuenow', Math.round(percent));
  }
  function follow(event) {
    var box = cmp.getBoundingClientRect();
    setSplit(100 * (event.clientX - box.left) / box.width);
  }
  cmp.addEventListener('pointerdown', function (event) {
    dragging = true;
    cmp.setPointerCapture(event.pointerId);
    follow(event);
    event.preventDefault();
  });
  cmp.addEventListener('pointermove', function (event) { if (dragging) follow(event); });
  cmp.addEventListener('pointerup', function () { dragging = false; });
  cmp.addEventListener('pointercancel', function () { dragging = false; });
  divider.addEventListener('keydown', function (event) {
    var step = {ArrowLeft: -5, ArrowRight: 5}[event.key];
    if (step) { setSplit(parseFloat(cmp.dataset.split) + step); event.preventDefault(); }
  });
  cmp.previousElementSibling.querySelectorAll('select.pick').forEach(function (select) {
    select.addEventListener('change', function () {
      cmp.querySelectorAll('.layer.' + select.dataset.side + ' img').forEach(function (img) {
        img.hidden = img.dataset.view !== select.value;
      });
    });
  });
});
"""
