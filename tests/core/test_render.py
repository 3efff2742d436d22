"""Colour label maps and overlays: exact colours, legend shares, identity and notice burned in."""
from __future__ import annotations

import numpy as np
import pytest

from core.classes import class_table
from core.output.render import (
    LEGEND_WIDTH,
    blend,
    colour_map,
    model_identity_lines,
    overlay_image,
)

IDS = (1, 2, 3, 4, 5)
NAMES = ("Healthy tissue", "Tumour", "Venous blood", "Arterial blood", "Dura mater")


def _labels():
    labels = np.zeros((20, 40), np.uint8)
    labels[:10, :20] = 1
    labels[:10, 20:] = 2
    labels[10:, :10] = 5
    return labels  # 25 % healthy, 25 % tumour, 12.5 % dura, 37.5 % unclassified


def test_colour_map_uses_class_table_colours():
    labels = _labels()
    for palette in ("thesis", "colourblind"):
        rgb = colour_map(labels, palette=palette)
        assert rgb.shape == (20, 40, 3) and rgb.dtype == np.uint8
        for class_id in (1, 2, 5):
            assert tuple(rgb[labels == class_id][0]) == class_table().colour(class_id, palette)
        assert not rgb[labels == 0].any()


def test_legend_fractions_are_of_the_whole_frame():
    from core.output.legend import legend_rows

    shares = {row.name: row.fraction for row in legend_rows(_labels(), IDS, NAMES)}
    assert shares == {
        "Healthy tissue": 0.25, "Tumour": 0.25, "Venous blood": 0.0, "Arterial blood": 0.0, "Dura mater": 0.125,
        "not classified": 0.375,
    }
    assert sum(shares.values()) == pytest.approx(1.0)


def test_blend_mixes_only_classified_pixels():
    labels = _labels()
    rgb = np.full((20, 40, 3), 100, np.uint8)
    out = blend(rgb, labels, alpha=0.5)
    assert tuple(out[0, 0]) == (50, 178, 50)  # 0.5 * (100, 100, 100) + 0.5 * (0, 255, 0), rounded
    assert tuple(out[15, 30]) == (100, 100, 100)  # label 0: the RGB unchanged
    with pytest.raises(ValueError, match="alpha"):
        blend(rgb, labels, alpha=2.0)
    with pytest.raises(ValueError, match="rgb must be"):
        blend(rgb[:5], labels)


def test_overlay_has_image_legend_swatches_and_banner():
    labels = _labels()
    rgb = np.full((20, 40, 3), 100, np.uint8)
    image = overlay_image(rgb, labels, class_ids=IDS, class_names=NAMES, model_lines=("Model: x v1",), alpha=0.5)
    scale = 20  # 40 px wide -> enlarged to >= 800 px
    assert image.width == 40 * scale + LEGEND_WIDTH
    pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels[: 20 * scale : scale, : 40 * scale : scale], blend(rgb, labels, alpha=0.5))
    legend = pixels[:, 40 * scale :].reshape(-1, 3)
    legend_colours = {tuple(c) for c in np.unique(legend, axis=0)}
    for class_id in IDS:  # every model class has its swatch, even at 0 %
        assert class_table().colour(class_id) in legend_colours
    banner = pixels[-20:, :400].reshape(-1, 3)
    assert len(np.unique(banner, axis=0)) > 2  # the notice is drawn (banner colour + text colours)


def test_overlay_text_changes_with_model_identity():
    labels, rgb = _labels(), np.zeros((20, 40, 3), np.uint8)
    a = np.asarray(overlay_image(rgb, labels, class_ids=IDS, class_names=NAMES, model_lines=("Model: a v1",)))
    b = np.asarray(overlay_image(rgb, labels, class_ids=IDS, class_names=NAMES, model_lines=("Model: b v2",)))
    assert a.shape == b.shape and (a != b).any()


def test_model_identity_lines():
    class Info:
        name, version, sha256 = "demo", "3", "ab" * 32

    assert model_identity_lines(Info()) == ("Model: demo v3", "sha256 abababababababab", "Scored locally")
    assert model_identity_lines(Info(), source="https://x/score")[-1] == "Scored by: https://x/score"
    stamped = model_identity_lines(Info(), classified_at="2026-11-27T10:00:00+00:00")
    assert stamped[-1] == "Classified 2026-11-27T10:00:00+00:00"


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        colour_map(np.zeros((4, 4), np.int64))
