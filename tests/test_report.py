"""Tests of srgan_tf.report and `evaluate --report`: the page's content, and its use in Chromium."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from srgan_tf import evaluate, report
from srgan_tf.upscale import bicubic_resolver, keras_resolver
from tests.browser import Browser, find_chromium
from tests.conftest import lively_generator, write_images
from tests.test_evaluate import run_cli

ODD_NAME = "b&w <i>#2.png"  # HTML and URL metacharacters in an image's name


@pytest.fixture
def two_images(tmp_path):
    """A set "Two" of two small real-photo HR images, one with a hostile file name."""
    folder = tmp_path / "Two"
    paths = write_images(folder, [(96, 128), (120, 96)])
    paths[1].rename(folder / ODD_NAME)
    return folder


def test_largest_difference_window_finds_the_changed_square():
    a = np.zeros([50, 70, 3], np.uint8)
    b = a.copy()
    b[30:40, 45:55] = 200
    b[0:3, 0:3] = 255  # a smaller, stronger difference elsewhere
    assert report.largest_difference_window(a, b, side=10) == (30, 45, 10)
    top, left, side = report.largest_difference_window(a, b, side=96)
    assert side == 50 and top == 0 and left <= 45 and left + side >= 55
    # With a 4-px margin the corner difference is out of the search; windows stay inside.
    b[30:40, 45:55] = 0
    b[20:24, 20:24] = 50
    assert report.largest_difference_window(a, b, side=10, margin=4) == (14, 14, 10)
    assert report.largest_difference_window(a, b, side=96, margin=4) == (4, 4, 42)
    assert report.largest_difference_window(a[:6, :6], b[:6, :6], side=3, margin=4) == (0, 0, 3)


def test_check_destination_refuses_reports_without_overwrite_and_other_folders(tmp_path):
    report.check_destination(str(tmp_path / "new"))
    (tmp_path / "empty").mkdir()
    report.check_destination(str(tmp_path / "empty"))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "index.html").write_text("old")
    with pytest.raises(FileExistsError, match="--report .*old already holds a report: pass "
                                              "--overwrite"):
        report.check_destination(str(tmp_path / "old"))
    report.check_destination(str(tmp_path / "old"), overwrite=True)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="--report .*photos is a non-empty folder without "
                                         "index.html"):
        report.check_destination(str(tmp_path / "photos"), overwrite=True)
    with pytest.raises(ValueError, match="a.jpg is a file"):
        report.check_destination(str(tmp_path / "photos" / "a.jpg"), overwrite=True)


def test_compare_writes_a_report_that_replaces_an_old_one_only_when_asked(two_images, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("old report")
    (out / "stale.png").write_bytes(b"x")
    resolvers = {"bicubic": bicubic_resolver()}
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        evaluate.compare(resolvers, [str(two_images)], report_dir=str(out))
    assert (out / "index.html").read_text() == "old report"

    def broken(lr_u8):
        raise ValueError("the model failed: out of memory")
    with pytest.raises(ValueError, match="out of memory"):  # a failure keeps the old report
        evaluate.compare({"broken": broken}, [str(two_images)], baseline_fn=bicubic_resolver(),
                         report_dir=str(out), overwrite=True)
    assert (out / "index.html").read_text() == "old report"
    assert sorted(os.listdir(tmp_path)) == ["Two", "report"]  # no staging folder left behind

    results = evaluate.compare(resolvers, [str(two_images)], report_dir=str(out), overwrite=True)
    page = (out / "index.html").read_text()
    assert not (out / "stale.png").exists()
    assert list(results) == ["bicubic"] and "Two" in results["bicubic"]
    assert f"{results['bicubic']['Two']['psnr_y']:.2f}" in page


def test_report_escapes_names_and_marks_the_best_value(two_images, tmp_path):
    hostile_set = two_images.rename(tmp_path / "<S&t>")
    generator = lively_generator()
    results = evaluate.compare({"<tiny & co>": keras_resolver(generator)}, [str(hostile_set)],
                               baseline_fn=bicubic_resolver(), report_dir=str(tmp_path / "r"))
    page = (tmp_path / "r" / "index.html").read_text()
    assert "<i>" not in page and "<tiny" not in page and "<S&t>" not in page
    assert "b&amp;w &lt;i&gt;#2.png" in page and "&lt;tiny &amp; co&gt;" in page
    assert "<h2>&lt;S&amp;t&gt;</h2>" in page
    assert page.count("<script>") == 1
    best_psnr = max(results["<tiny & co>"]["<S&t>"]["psnr_y"],
                    results["<tiny & co>"]["<S&t>"]["bicubic"]["psnr_y"])
    assert (f"<td data-key=\"psnr_y\" data-value=\"{best_psnr!r}\" class=\"best\"" in page)


def test_compare_save_dir_takes_one_model(two_images, tmp_path):
    resolvers = {"a": bicubic_resolver(), "b": bicubic_resolver()}
    with pytest.raises(ValueError, match="--save_dir takes one model, got 2: a, b"):
        evaluate.compare(resolvers, [str(two_images)], save_dir=str(tmp_path / "sr"))


def test_report_downscales_large_previews_and_keeps_full_size_crops(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "PREVIEW_SIDE", 64)
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, [96, 128, 3], dtype=np.uint8)
    bicubic = hr // 2
    sr = bicubic.copy()
    sr[40:90, 60:110] = hr[40:90, 60:110]  # the model differs from bicubic only here
    writer = report.ReportWriter(str(tmp_path / "r"))
    writer.add_image("Big", "big.png", hr, bicubic, "model", sr)
    row = {"name": "big.png", "psnr_y": 30.0, "ssim_y": 0.9, "psnr_rgb": 29.0,
           "bicubic_psnr_y": 25.0, "bicubic_ssim_y": 0.8, "bicubic_psnr_rgb": 24.0}
    result = {"psnr_y": 30.0, "ssim_y": 0.9, "psnr_rgb": 29.0, "num_images": 1,
              "bicubic": {"psnr_y": 25.0, "ssim_y": 0.8, "psnr_rgb": 24.0}, "images": [row]}
    writer.write({"model": {"Big": result}}, "test protocol")
    images = tmp_path / "r" / report.IMAGES
    with Image.open(images / "00-000-m0.png") as preview:
        assert preview.size == (64, 48)
    with Image.open(images / "00-000-m0-crop-sr.png") as crop:
        side = report.CROP_SIDE
        assert crop.size == (side, side)
        top, left, _ = report.largest_difference_window(sr, bicubic)
        np.testing.assert_array_equal(np.asarray(crop), sr[top:top + side, left:left + side])
    assert 40 - side < top <= 40 and 60 - side < left <= 60 + 50 - side
    assert "Preview downscaled to 64×48" in (tmp_path / "r" / "index.html").read_text()


def test_cli_report_needs_overwrite_for_an_existing_report(two_images, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("old report")
    # Checked before anything is loaded or evaluated: the missing model is not reached.
    proc = run_cli("--model", tmp_path / "missing.keras", "--hr_dir", two_images, "--report", out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: --report {out} already holds a report: pass --overwrite to replace it")
    assert (out / "index.html").read_text() == "old report"
    proc = run_cli("--bicubic", "--model", "srgan", "--hr_dir", two_images)
    assert proc.returncode == 2 and "--bicubic can't be combined with --model" in proc.stderr


def _png(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


@pytest.mark.browser
def test_report_in_chromium(two_images, tmp_path):
    """Two tiny models and bicubic on two images: loads, shows the JSON's scores, drags."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found on PATH (Debian: apt-get install chromium)")
    for seed in (0, 1):
        lively_generator(seed).save(tmp_path / f"g{seed}.keras")
    out, scores = tmp_path / "report", tmp_path / "scores.json"
    proc = run_cli("--model", tmp_path / "g0.keras", "--model", tmp_path / "g1.keras",
                   "--hr_dir", two_images, "--artifacts", "--report", out, "--output_json", scores)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(scores.read_text())
    labels = [str(tmp_path / "g0.keras"), str(tmp_path / "g1.keras")]
    assert list(results) == labels
    assert all(f"Two ({label};" in proc.stdout for label in labels)  # one table per model

    with Browser(chromium, width=1000, height=800) as browser:
        browser.open((out / "index.html").as_uri())
        images = browser.evaluate("[...document.images].map(i => [i.alt, i.naturalWidth])")
        # Per image: 2 layers x (bicubic, 2 models, HR) and 2 crops x (bicubic, model, HR).
        assert len(images) == 2 * (2 * 4 + 2 * 3)
        assert all(width > 0 for _, width in images), images
        boxes = browser.evaluate("[...document.querySelectorAll('.cmp')].map("
                                 "c => c.querySelectorAll('.box').length)")
        assert boxes == [2, 2]  # each model's crop window outlined on each comparison
        titles = browser.evaluate("[...document.querySelectorAll('article h3')]"
                                  ".map(h => h.firstChild.textContent.trim())")
        assert titles == [ODD_NAME, "img00.png"]  # sorted by file name

        cells = browser.evaluate("""[...document.querySelectorAll('table.scores.set td')].map(
            td => [td.closest('tr').dataset.method, td.dataset.key, td.dataset.value || null,
                   td.textContent, td.classList.contains('best')])""")
        assert len(cells) == 3 * 6  # bicubic and two models x 3 scores and 3 artifact measures
        for method, key, value, text, best in cells:
            mean = results[labels[0]]["Two"]["bicubic"] if method == "bicubic" else \
                results[method]["Two"]
            if key not in mean:  # artifact measures are not computed for bicubic
                assert method == "bicubic" and value is None and text == "–"
                continue
            assert float(value) == mean[key]
            assert text == report.COLUMNS[key][1].format(mean[key])
            if key == "psnr_y":
                top = max([results[label]["Two"]["psnr_y"] for label in labels]
                          + [results[labels[0]]["Two"]["bicubic"]["psnr_y"]])
                assert best == (mean[key] == top)

        image_cells = browser.evaluate("""[...document.querySelectorAll('article')].map(
            a => [a.querySelector('h3').firstChild.textContent.trim(),
                  [...a.querySelectorAll('table.scores.image td[data-value]')].map(
                      td => [td.closest('tr').dataset.method, td.dataset.key,
                             td.dataset.value])])""")
        assert len(image_cells) == 2
        for name, cells in image_cells:
            assert len(cells) == 3 + 2 * 6
            for method, key, value in cells:
                row = next(r for r in results[labels[0] if method == "bicubic" else method]
                           ["Two"]["images"] if r["name"] == name)
                assert float(value) == row[f"bicubic_{key}" if method == "bicubic" else key]

        # A pointer drag on the first comparison moves the divider and what is visible.
        box = browser.evaluate("""(() => {
            const cmp = document.querySelector('.cmp');
            cmp.scrollIntoView({block: 'center'});
            const r = cmp.getBoundingClientRect();
            return {x: r.left, y: r.top, width: r.width, height: r.height,
                    split: cmp.dataset.split};
        })()""")
        assert box["split"] == "50"
        assert box["width"] == 96 * 5  # 96 px wide: enlarged x5 to reach MIN_DISPLAY_WIDTH
        clip = {k: box[k] for k in ("x", "y", "width", "height")}
        before = _png(browser.screenshot(clip))
        y = box["y"] + box["height"] / 2
        browser.drag((box["x"] + box["width"] / 2, y), (box["x"] + box["width"] * 0.2, y))
        split = browser.evaluate("document.querySelector('.cmp').dataset.split")
        assert abs(float(split) - 20) < 2, split
        clip_path = browser.evaluate(
            "getComputedStyle(document.querySelector('.cmp .layer.right')).clipPath")
        assert "20" in clip_path, clip_path
        after = _png(browser.screenshot(clip))
        width = before.shape[1]
        changed = np.abs(after - before).mean(axis=(0, 2))  # per column
        assert changed[int(width * 0.25):int(width * 0.45)].mean() > 2  # now the left image
        assert changed[int(width * 0.55):].mean() < 0.5  # still the right image

        browser.evaluate("document.querySelector('.cmp .divider').focus()")
        for _ in range(2):
            for kind in ("rawKeyDown", "keyUp"):
                browser.send("Input.dispatchKeyEvent", type=kind, key="ArrowRight",
                             code="ArrowRight", windowsVirtualKeyCode=39)
        split = browser.evaluate("document.querySelector('.cmp').dataset.split")
        assert abs(float(split) - 30) < 2, split  # two steps of 5 % to the right

        shown = browser.evaluate("""(() => {  // choose HR on the right of the first comparison
            const select = document.querySelector('select.pick[data-side=right]');
            select.value = String(select.options.length - 1);
            select.dispatchEvent(new Event('change'));
            return [...document.querySelectorAll('.cmp')[0].querySelectorAll('.layer img')]
                .filter(img => !img.hidden).map(img => img.alt);
        })()""")
        assert shown == ["bicubic", "HR"]

        page = _png(browser.screenshot())
        assert page.std() > 20 and len(np.unique(page.reshape(-1, 3), axis=0)) > 1000
