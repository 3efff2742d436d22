"""The synthetic scene at cube resolution: dura rim, cortex, tumour, vessels, shading; sparse annotations."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.classes import CLASS_IDS
from core.capture.synthetic.statistics import THESIS_CUBE_HW


def _irregular_radius(rng: np.random.Generator, angle: np.ndarray, *, roughness: float, orders=range(2, 8)):
    """1 + sum_k a_k cos(k angle + phase_k): a wobbly outline around a unit circle."""
    radius = np.ones_like(angle)
    for k in orders:
        radius += rng.normal(0.0, roughness / k) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return radius


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Spatially smooth standard-normal-ish field (H, W), unit std."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    return field_ / max(float(field_.std()), 1e-6)


def _draw_vessels(
    rng: np.random.Generator,
    shape: tuple[int, int],
    inside: np.ndarray,
    centre: tuple[float, float],
    extent: float,
    radius_px: tuple[float, float],
    target_area: int,
    max_vessels: int,
    min_vessels: int = 2,
) -> np.ndarray:
    """Curvy lines of varying width inside ``inside``, added until they cover ``target_area`` px."""
    h, w = shape
    radii = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    step = 0.5
    drawn = 0
    for _ in range(max_vessels):
        # Start near the craniotomy edge and head roughly across it, turning smoothly.
        start_angle = rng.uniform(0, 2 * np.pi)
        y = centre[0] + 0.9 * extent * np.sin(start_angle) * h / max(h, w)
        x = centre[1] + 0.9 * extent * np.cos(start_angle) * w / max(h, w)
        heading = start_angle + np.pi + rng.normal(0.0, 0.5)
        n = int(rng.uniform(1.2, 2.0) * extent / step)
        # Gentle meanders: the heading drifts by about a radian over a few tens of pixels.
        turning = ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, n), 40)
        turning *= 0.012 / max(float(turning.std()), 1e-9)
        headings = heading + np.cumsum(turning)
        ys = y + np.cumsum(step * np.sin(headings))
        xs = x + np.cumsum(step * np.cos(headings))
        t = np.linspace(0.0, 1.0, n)
        base = rng.uniform(*radius_px)
        widths = base * (1.0 - 0.45 * t) * (1.0 + 0.25 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
        rows, cols = np.round(ys).astype(int), np.round(xs).astype(int)
        keep = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        if not keep.any():
            continue
        drawn += 1
        np.maximum.at(radii, (rows[keep], cols[keep]), widths[keep].astype(np.float32))
        # Each pixel takes the width of its nearest centre-line point: one distance transform.
        distance, (near_r, near_c) = ndimage.distance_transform_edt(radii == 0, return_indices=True)
        mask = (distance <= np.maximum(radii[near_r, near_c], 0.5)) & inside
        if mask.sum() >= target_area and drawn >= min_vessels:
            break
    return mask


def draw_scene(rng: np.random.Generator, hw: tuple[int, int], counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Dense class map (H, W) uint8 and brightness (H, W) float32 in about [0.3, 0.7]."""
    h, w = hw
    size = max(h, w)
    scale = min(h, w) / THESIS_CUBE_HW[0]  # 1 at thesis resolution
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2 + rng.uniform(-0.05, 0.05) * h, w / 2 + rng.uniform(-0.05, 0.05) * w
    # Elliptical normalised radius: 1 at the image's inscribed ellipse.
    ey, ex = (yy - cy) / (h / 2), (xx - cx) / (w / 2)
    rho = np.hypot(ey, ex) / _irregular_radius(rng, np.arctan2(ey, ex), roughness=0.12)
    rho = rho + 0.03 * _smooth_noise(rng, hw, max(1.0, 2 * scale))

    truth = np.zeros(hw, dtype=np.uint8)
    outer = rho < 1.25  # beyond: drapes and skin (background, class 0) in the corners
    # Craniotomy edge chosen so the dura rim holds ~2.5x the dura strokes (and at least 12 % of the frame).
    need = max(int(2.5 * counts[5]), int(0.12 * h * w))
    rim_rho = np.sort(rho[outer])
    edge = rim_rho[max(0, len(rim_rho) - need - 1)] if need < len(rim_rho) else rim_rho[0]
    edge = float(np.clip(edge, 0.45, 0.92))
    brain = rho < edge
    truth[outer] = 5
    truth[brain] = 1

    # Tumour: an irregular blob inside the brain, sized from the tumour strokes it must hold.
    brain_area = int(brain.sum())
    area = float(np.clip(3.0 * counts[2], 0.03 * brain_area, 0.45 * brain_area))
    radius = np.sqrt(area / np.pi)
    room = max(0.0, edge * min(h, w) / 2 - radius)
    angle = rng.uniform(0, 2 * np.pi)
    ty, tx = cy + rng.uniform(0, 0.6) * room * np.sin(angle), cx + rng.uniform(0, 0.6) * room * np.cos(angle)
    dist = np.hypot(yy - ty, xx - tx)
    outline = radius * _irregular_radius(rng, np.arctan2(yy - ty, xx - tx), roughness=0.35)
    tumour = (dist / np.maximum(outline, 1e-3) + 0.12 * _smooth_noise(rng, hw, max(1.0, 1.5 * scale)) < 1.0) & brain
    truth[tumour] = 2

    # Vessels run over cortex and tumour; arteries are thinner and drawn last (on top).
    extent = edge * size / 2
    venous = _draw_vessels(
        rng, hw, brain, (cy, cx), extent, (1.2 * scale + 0.3, 3.2 * scale + 0.5), max(int(2.5 * counts[3]), 1), 12
    )
    truth[venous] = 3
    arterial = _draw_vessels(
        rng, hw, brain, (cy, cx), extent, (0.7 * scale + 0.3, 1.8 * scale + 0.4), max(int(2.5 * counts[4]), 1), 10
    )
    truth[arterial] = 4

    # Brightness: a lit dome (curvature shading) times the light spot; vessels and background darker.
    dome = np.sqrt(np.clip(1.0 - (rho / 1.3) ** 2, 0.0, 1.0))
    spot = np.exp(-(((yy - cy - 0.1 * h) / (0.9 * h)) ** 2 + ((xx - cx + 0.1 * w) / (0.9 * w)) ** 2))
    brightness = 0.3 + 0.4 * (0.55 * dome + 0.45 * spot) * (1.0 + 0.05 * _smooth_noise(rng, hw, max(1.0, 3 * scale)))
    brightness = np.where(np.isin(truth, (3, 4)), brightness * 0.85, brightness)
    brightness = np.where(truth == 0, brightness * 0.8, brightness)
    return truth, np.clip(brightness, 0.25, 0.72).astype(np.float32)


def annotate(rng: np.random.Generator, truth: np.ndarray, counts: dict[int, int]) -> np.ndarray:
    """Sparse blob-shaped strokes inside each class region, ``counts[c]`` pixels per class (fewer if too small)."""
    h, w = truth.shape
    labels = np.zeros(truth.shape, dtype=np.uint8)
    for class_id in CLASS_IDS:
        target = counts[class_id]
        if target <= 0:
            continue
        region = truth == class_id
        # Annotators keep off borders: use the eroded region when it still has room.
        eroded = ndimage.binary_erosion(region)
        if eroded.sum() >= 1.5 * target:
            region = eroded
        available = region & (labels == 0)
        done = 0
        n_blobs = int(rng.integers(1, 3)) if target < 40 else int(rng.integers(2, 7))
        blob_area = max(target / n_blobs, 1.0)
        for _ in range(400):
            if done >= target or not available.any():
                break
            rows, cols = np.nonzero(available)
            pick = int(rng.integers(len(rows)))
            r0, c0 = rows[pick], cols[pick]
            want = min(int(np.ceil(blob_area * rng.uniform(0.7, 1.3))), target - done)
            radius = np.sqrt(want / np.pi) + 1.0
            # Look far enough that a thin vessel still yields a stroke of `want` pixels along it.
            reach = int(np.ceil(3.0 * radius)) + 2
            r_lo, r_hi, c_lo, c_hi = max(0, r0 - reach), min(h, r0 + reach + 1), max(0, c0 - reach), min(w, c0 + reach + 1)
            yy, xx = np.mgrid[r_lo:r_hi, c_lo:c_hi]
            wobble = _irregular_radius(rng, np.arctan2(yy - r0, xx - c0), roughness=0.3, orders=range(2, 5))
            closeness = np.hypot(yy - r0, xx - c0) / np.maximum(wobble, 0.3)
            blob_rows, blob_cols = np.nonzero(available[r_lo:r_hi, c_lo:c_hi])
            if len(blob_rows) == 0:
                continue
            # The `want` nearest free pixels (in the wobbly metric): a blob, or a segment of a vessel.
            order = np.argsort(closeness[blob_rows, blob_cols], kind="stable")[:want]
            labels[blob_rows[order] + r_lo, blob_cols[order] + c_lo] = class_id
            available[blob_rows[order] + r_lo, blob_cols[order] + c_lo] = False
            done += len(order)
    return labels
