"""Hatched out-of-distribution pixels and the unusable-capture watermark."""
from __future__ import annotations

import numpy as np
import pytest

from core.output.legend import apply_flags, flag_rgba, make_layer
from core.output.trust_render import OOD_FILL, OOD_HATCH, watermark


def test_hatch_covers_exactly_the_mask_in_two_greys():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:25] = True
    hatch = flag_rgba([make_layer("ood", mask)])
    assert (hatch[..., 3] > 0).sum() == mask.sum() and not hatch[~mask].any()
    colours = {tuple(c) for c in hatch[mask][:, :3]}
    assert colours == {OOD_FILL, OOD_HATCH}


def test_apply_flags_changes_only_masked_pixels():
    rgb = np.full((10, 10, 3), 200, np.uint8)
    mask = np.eye(10, dtype=bool)
    out = apply_flags(rgb, [make_layer("ood", mask)])
    assert (out[~mask] == 200).all() and not (out[mask] == 200).all(axis=-1).any()
    assert (apply_flags(rgb, []) == rgb).all()


@pytest.mark.parametrize("channels", [3, 4])
def test_watermark_marks_the_image(channels):
    image = np.full((120, 200, channels), 30, np.uint8)
    marked = watermark(image)
    assert marked.shape == image.shape and marked.dtype == np.uint8
    red = (marked[..., 0] > 100) & (marked[..., 1] < 80)
    assert red[:20].any() and red[50:70].any() and red[-20:].any()
