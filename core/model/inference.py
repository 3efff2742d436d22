"""Whole-cube inference and the one-call pipeline (raw triplet -> label map).

``predict_dense`` runs :class:`core.model.network.DenseConv2DNet` on the whole cube in one
pass (no patches are built): per-class probabilities ``float32 (H, W, C)`` and
class-id labels ``uint8 (H, W)``, 0 where the pixel is invalid.
The pipeline has two steps: :func:`prepare` / :func:`prepare_files` (read,
preprocess, synthetic RGB -> :class:`Prepared`) and :func:`classify_prepared`
(compatibility check, dense inference -> :class:`ClassificationResult`);
``classify`` / ``classify_files`` run both. The CLI, the GUI worker and the
scoring service all call these. Timings are seconds of wall clock; "total" is
always measured around what the caller waited for, never summed from stages.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.capture.files import Capture, load_capture
from core.clock import utc_now_iso
from core.cpu import run_parallel, usable_cores
from core.errors import ModelFileError
from core.model.compatibility import check_compatible
from core.model.files import LoadedModel, ModelInfo
from core.spectral.chain import CalibrationCache, CalibrationReferences, Cube, preprocess_capture
from core.capture.quality import QualityReport, assess_quality, make_report
from core.spectral.rgb import synthetic_rgb
from core.model.trust import trust_of
from core.spectral.tissue import tissue_check

if TYPE_CHECKING:  # torch is imported on first use, so ClassificationResult stays light (remote client, GUI)
    from core.model.network import Conv2DNet, DenseConv2DNet


@dataclass(frozen=True)
class ClassificationResult:
    """What one classification produced, local or remote."""

    labels: np.ndarray  # uint8 (H, W) class ids, 0 where the pixel is invalid
    probabilities: np.ndarray  # float32 (H, W, C), in model.class_ids order; 0 where invalid
    rgb: np.ndarray  # uint8 (H, W, 3) synthetic RGB
    model: ModelInfo
    timings_s: dict[str, float] = field(default_factory=dict)  # "read", "preprocess", "infer", "total", ...
    cube: Cube | None = None  # None for remote results
    source: str = "local"  # "local" or the endpoint URL
    classified_at: str = field(default_factory=utc_now_iso)  # when the map was made, ISO 8601 UTC
    quality: QualityReport | None = None  # capture quality incl. the out-of-distribution check (core.model.trust)
    ood_mask: np.ndarray | None = None  # bool (H, W): unlike the training spectra; None when the model has no description
    ood_fraction: float | None = None  # share of valid pixels out of distribution; None when unavailable
    # Pixels that were not measured and so not classified (label 0): outside the valid mask, clipped
    # raw in any band (saturated or at/below dark), or no tissue (core.spectral.tissue).
    masked_mask: np.ndarray | None = None  # bool (H, W); None when unknown (an old service)
    masked_fraction: float | None = None  # share of the frame's pixels, 0..1
    # Per-pixel uncertainty (core.model.uncertainty, above the threshold; None when the flag is off); drawn as a flag layer.
    uncertain_mask: np.ndarray | None = None  # bool (H, W)
    uncertain_fraction: float | None = None  # share of the frame's pixels, 0..1


def _use_all_cores(threads: int | None = None) -> None:
    import torch

    # torch defaults to the physical cores it sees, which under a CPU quota or
    # affinity mask can be more than the process may use; match the affinity.
    # ``threads`` (live mode) pins the count: there another thread prepares the next
    # capture, and two intra-op threads on 2 cores spin against it (measured: 2.4x
    # the CPU per map for no faster map; docs/benchmarks/live.md).
    cores = usable_cores() if threads is None else threads
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def predict_dense(
    net: "Conv2DNet | DenseConv2DNet",
    cube: Cube | np.ndarray,
    *,
    padding: str = "reflect",
    class_ids=None,
    threads: int | None = None,
    temperature: float = 1.0,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``float32 (H, W, C)`` and labels ``uint8 (H, W)`` for every pixel of ``cube``.

    ``cube`` is a :class:`Cube` (its ``valid`` mask applies: label 0 and all-zero
    probabilities where invalid) or a float ``(H, W, B)`` array (all pixels valid).
    Labels are ``class_ids[argmax]``; ``class_ids`` defaults to ``1..C``.
    Border pixels are classified through ``padding`` (mode name as in the model file).
    ``net`` is the patch network (converted here) or its dense twin, whose own padding wins.
    ``threads``: intra-op threads to use (default: every usable core). The result does
    not depend on it. On the CPU the network runs in ONNX Runtime where installed
    (:mod:`core.model.ort_runtime`), else in torch. ``temperature`` (> 0) divides the logits before the
    softmax (the model file's calibration); it never changes the labels.
    ``device``: torch device name (default :func:`core.model.device.inference_device`: CUDA
    when present, else the CPU); the maps agree within float32 rounding.
    """
    import torch

    from core.model.device import inference_device, on_device
    from core.model.network import NUMPY_PADDING_MODES, DenseConv2DNet, check_padding
    from core.model.ort_runtime import cpu_runtime
    from core.model.ort_runtime import dense_logits as ort_dense_logits

    from core.model.spectral_net import SpectralNet

    data, valid = (cube.data, cube.valid) if isinstance(cube, Cube) else (np.asarray(cube), None)
    if data.ndim != 3:
        raise ValueError(f"cube must be (H, W, B), got shape {data.shape}")
    if isinstance(net, SpectralNet):  # one pixel at a time: no padding, no neighbours
        from core.model.spectral_net import spectral_logits

        ids = _checked_arguments(net.n_bands, net.n_classes, data, class_ids, threads, temperature)
        _use_all_cores(threads)
        logits_hwc = spectral_logits(net, np.asarray(data, dtype=np.float32)).numpy()
        return _probabilities_and_labels(logits_hwc, ids, valid, temperature)
    # The dense twin's own padding wins; a patch network's twin is made only where needed
    # (torch; a new ONNX Runtime session): no torch work per map on the ONNX Runtime path.
    padding = net.padding if isinstance(net, DenseConv2DNet) else check_padding(padding)

    def make_dense() -> DenseConv2DNet:
        return net if isinstance(net, DenseConv2DNet) else DenseConv2DNet.from_patch_model(net, padding=padding)

    ids = _checked_arguments(net.n_bands, net.n_classes, data, class_ids, threads, temperature)
    device = inference_device(device)
    half = net.patch_size // 2
    if padding == "reflect" and min(data.shape[:2]) <= half:
        raise ValueError(
            f"cube {data.shape[0]}x{data.shape[1]} is too small for reflect padding of {half} (patch size {net.patch_size})"
        )
    if device == "cpu" and cpu_runtime() == "onnxruntime":
        # The graph pads and transposes the (H, W, B) cube itself: no copy here.
        cores = usable_cores() if threads is None else threads
        planes = ort_dense_logits(net, padding, make_dense, data, cores)  # (C, H, W)
        return _probabilities_and_labels(np.moveaxis(planes, 0, -1), ids, valid, temperature)
    dense = make_dense()
    _use_all_cores(threads)
    # Pad the (H, W, B) array in numpy: the padded copy is born channels_last, and
    # numpy's reflect is several times faster than torch's on NCHW.
    padded = np.pad(np.asarray(data, dtype=np.float32), ((half, half), (half, half), (0, 0)),
                    mode=NUMPY_PADDING_MODES[padding])
    with torch.inference_mode():
        x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0)  # (1, B, H+p-1, W+p-1), channels_last view
        logits = on_device(dense, device).eval().forward_padded(x.to(device))[0]  # (C, H, W)
        # (H, W, C): channels_last output, so this is a view; a copy only if not.
        logits_hwc = logits.permute(1, 2, 0).contiguous().cpu().numpy()
    return _probabilities_and_labels(logits_hwc, ids, valid, temperature)


def _checked_arguments(n_bands: int, n_classes: int, data: np.ndarray, class_ids, threads, temperature) -> np.ndarray:
    """The class ids ``(C,)`` of :func:`predict_dense`, after checking bands, ids, threads and temperature."""
    if data.shape[-1] != n_bands:
        raise ValueError(f"the model expects {n_bands} bands, the cube has {data.shape[-1]}")
    ids = np.arange(1, n_classes + 1) if class_ids is None else np.asarray(class_ids)
    if ids.shape != (n_classes,) or ids.min() < 0 or ids.max() > 255:
        raise ValueError(f"class_ids must be {n_classes} ids in 0..255, got {class_ids!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return ids


def _probabilities_and_labels(logits_hwc: np.ndarray, ids: np.ndarray, valid, temperature: float):
    """Calibrated probabilities ``float32 (H, W, C)`` and labels ``uint8 (H, W)`` of logits ``(H, W, C)``;
    label 0 and all-zero probabilities where ``valid`` (bool (H, W) or None) is False."""
    if temperature != 1.0:  # skipped at 1 so uncalibrated models keep their exact bits
        logits_hwc = np.divide(logits_hwc, np.float32(temperature), dtype=np.float32)
    probs = _softmax_last(logits_hwc)
    labels = ids.astype(np.uint8)[probs.argmax(axis=-1)]
    if valid is not None and not valid.all():
        labels[~valid] = 0
        probs[~valid] = 0.0
    return probs, labels


def _softmax_last(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32, in numpy: ``(..., C)`` logits -> probabilities ``(..., C)``.

    numpy rather than ``torch.softmax``, whose result depends on torch's thread count.
    Worked class-major ``(C, H, W)``: reductions over a last axis of 5 classes run
    element by element, while across whole class planes they vectorise (6.8 -> 1.8 ms
    a full map, the same bits: the same operations in the same order per pixel).
    """
    # Infinite logits (broken weights) give NaN, which the caller refuses in one line; numpy's
    # own RuntimeWarning would be a second, raw line.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        planes = np.ascontiguousarray(np.moveaxis(logits, -1, 0), dtype=np.float32)  # (C, ...), a copy
        planes -= planes.max(axis=0)
        np.exp(planes, out=planes)
        planes /= planes.sum(axis=0)
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1))


@dataclass(frozen=True)
class Prepared:
    """A capture ready to show and classify: step one of the pipeline (:func:`prepare`).

    ``timings_s`` (s): "read" (only when read from files), "preprocess", "rgb" and
    "total", the wall clock of the whole step (not a sum of the stages).
    """

    capture: Capture
    cube: Cube  # float32 (H, W, B) normalised, with validity mask (H, W) and wavelengths (B,)
    rgb: np.ndarray | None  # uint8 (H, W, 3) synthetic RGB; None when not asked for (prepare(rgb=False))
    timings_s: dict[str, float]
    quality: QualityReport | None = None  # assess_quality of the capture + the "featureless" check
    not_measured: np.ndarray | None = None  # bool (H, W): never classified (see :func:`not_measured_pixels`)


def prepare(
    capture: Capture,
    *,
    profile_name: str | None = None,
    references: CalibrationCache | CalibrationReferences | None = None,
    threads: int | None = 1,
    rgb: bool = True,
) -> Prepared:
    """Preprocess ``capture`` (calibration to normalised cube) and build its synthetic RGB.

    ``references``: the reference half of calibration precomputed
    (:func:`core.spectral.chain.calibration_references`) or a
    :class:`core.spectral.chain.CalibrationCache` to take it from, for many captures
    against one dark/white pair; the result is bit-identical to preparing without.
    ``threads`` (None: every usable core): the cube is made in bands and the RGB beside the
    quality checks, on that many threads; the same result. Live classifiers keep 1 each.
    ``rgb=False``: no synthetic RGB (``Prepared.rgb`` None, no "rgb" timing), for a consumer
    that shows no image (``neurohsi watch``: 4-7 ms of CPU a map saved).
    Timings (s): "preprocess", "rgb", "quality" (each its own wall clock; the last two may
    overlap) and "total".
    """
    start = time.perf_counter()
    cube = preprocess_capture(capture, profile_name=profile_name, references=references, threads=threads)
    t_pre = time.perf_counter()

    def rgb_of() -> tuple[np.ndarray, float]:
        began = time.perf_counter()
        return synthetic_rgb(cube), time.perf_counter() - began

    def quality_of() -> tuple[tuple[QualityReport, np.ndarray], float]:
        began = time.perf_counter()
        quality = assess_quality(capture)  # ~1 ms: every 4th row and column
        return not_measured_pixels(cube, quality), time.perf_counter() - began

    if rgb:
        (image, rgb_s), ((quality, masked), quality_s) = run_parallel([rgb_of, quality_of], threads=threads)
    else:
        image, ((quality, masked), quality_s) = None, quality_of()
    end = time.perf_counter()
    timings = {"preprocess": t_pre - start, **({"rgb": rgb_s} if rgb else {}), "quality": quality_s,
               "total": end - start}
    return Prepared(capture, cube, image, timings, quality, masked)


def not_measured_pixels(cube: Cube, quality: QualityReport) -> tuple[QualityReport, np.ndarray]:
    """``quality`` with the "featureless" check added, and ``bool (H, W)``: the pixels never classified.

    Not measured: outside the valid mask, clipped in any band (``cube.clipped``), or not
    tissue (:func:`core.spectral.tissue.tissue_check`: flat spectra, or every pixel of a
    featureless frame). Such pixels get label 0 and their own legend entry, so a saturated
    stripe or a grey card is never painted as a tissue class.
    """
    raw_flat = any(c.code == "flat_frame" and c.severity == "unusable" for c in quality.checks)
    check, not_tissue = tissue_check(cube, raw_flat=raw_flat)
    masked = ~np.asarray(cube.valid, dtype=bool) | not_tissue
    if cube.clipped is not None:
        masked |= cube.clipped
    return quality.with_check(check), masked


def prepare_files(
    raw: str | Path,
    dark: str | Path | None = None,
    white: str | Path | None = None,
    *,
    profile_name: str | None = None,
) -> Prepared:
    """Read a raw TIFF triplet (references found by name unless given) and :func:`prepare` it; adds "read"."""
    if is_cube_file(raw):
        if dark is not None or white is not None:
            raise ValueError(f"{raw}: a preprocessed cube needs no dark or white reference")
        if profile_name is not None:
            raise ValueError(f"{raw}: a preprocessed cube is already made; a camera profile does not apply to it")
        return prepare_cube_file(raw)
    start = time.perf_counter()
    capture = load_capture(raw, dark, white)
    t_read = time.perf_counter()
    prepared = prepare(capture, profile_name=profile_name, threads=None)
    timings = {"read": t_read - start, **prepared.timings_s, "total": time.perf_counter() - start}
    return replace(prepared, timings_s=timings)


CUBE_SUFFIXES = (".mat", ".npz")


def is_cube_file(path: str | Path) -> bool:
    """Whether ``path`` names a preprocessed cube (NEMESIS ``.mat``, ``neurohsi preprocess`` ``.npz``), not a TIFF."""
    return Path(path).suffix.lower() in CUBE_SUFFIXES


def prepare_cube_file(path: str | Path) -> Prepared:
    """A preprocessed cube file, ready to show and classify: no references, cube-level quality checks.

    ``Prepared.capture`` is a placeholder (1 x 1 frames, ``raw_path`` = the cube file,
    ``capture_id`` = its stem) so viewers that name the capture keep working.
    """
    from core.capture.quality import assess_cube_quality
    from core.dataset.nemesis_files import read_preprocessed_cube

    start = time.perf_counter()
    cube = read_preprocessed_cube(path).to_cube()
    t_read = time.perf_counter()
    rgb = synthetic_rgb(cube)
    t_rgb = time.perf_counter()
    quality = assess_cube_quality(cube)
    end = time.perf_counter()
    placeholder = np.zeros((1, 1), np.uint16)
    capture = Capture(placeholder, placeholder, placeholder, None, raw_path=Path(path), capture_id=Path(path).stem)
    timings = {"read": t_read - start, "rgb": t_rgb - t_read, "quality": end - t_rgb, "total": end - start}
    return Prepared(capture, cube, rgb, timings, quality)


_DEFAULT = object()  # "no threshold given": the product's default (core.model.uncertainty.default_threshold)


def classify_prepared(
    prepared: Prepared, model: LoadedModel, *, threads: int | None = None, uncertainty_threshold=_DEFAULT
) -> ClassificationResult:
    """Step two: check the model fits the prepared cube and classify every pixel.

    Timings (s): the prepared stages, "infer" (compatibility check, dense network
    and softmax) and "total": the wall clock of preparing plus the wall clock of
    this call, so a capture prepared once and classified later (the GUI) does not
    count the time the user spent looking at it. ``threads``: see :func:`predict_dense`.
    Probabilities are calibrated by the model file's temperature; with
    ``model.use_ensemble`` (:func:`core.model.ensemble.with_ensemble`) they are the mean of
    the ensemble members' and ``result.model`` names the ensemble.
    ``uncertainty_threshold`` (0..1, None = no flag; default: the product's default) sets
    ``uncertain_mask`` (:func:`core.model.uncertainty.with_uncertainty`).
    """
    from core.model.uncertainty import default_threshold, with_uncertainty

    start = time.perf_counter()
    check_compatible(model.info, prepared.cube, path=model.path)
    info = model.info
    if model.use_ensemble:
        from core.model.ensemble import ensemble_info, predict_ensemble

        probs, labels = predict_ensemble(model, prepared.cube, threads=threads)
        info = ensemble_info(info, len(model.members))
    else:
        probs, labels = predict_dense(model.net, prepared.cube, padding=info.padding, class_ids=info.class_ids,
                                      threads=threads, temperature=info.temperature)
    if not np.isfinite(probs).all():
        # Weights that overflow float32 (x 1e37) give NaN: a map from them would be noise labelled as tissue.
        raise ModelFileError(
            model.path, f"model {model.info.label} gives non-finite probabilities (NaN or infinity) on this capture: "
            "its weights are broken; reinstall or retrain it",
        )
    t_infer = time.perf_counter()
    # The map is made even for an unusable capture; whoever shows or writes it decides
    # (core.capture.quality.require_usable), so "show anyway" needs no second run.
    masked = prepared.not_measured
    if masked is None:  # a Prepared made by hand: the same rule
        _, masked = not_measured_pixels(prepared.cube, prepared.quality or make_report(()))
    if masked.any():
        labels[masked] = 0
        probs[masked] = 0.0
    threshold = default_threshold() if uncertainty_threshold is _DEFAULT else uncertainty_threshold
    result = ClassificationResult(
        labels, probs, prepared.rgb, info, {}, prepared.cube, "local",
        masked_mask=masked, masked_fraction=float(np.mean(masked)) if masked.size else 0.0,
    )
    # The out-of-distribution check and the uncertain pixels read the same map: at once.
    (quality, ood), result = run_parallel([
        lambda: trust_of(prepared.quality, model.info, prepared.cube, not_measured=masked),
        lambda: with_uncertainty(result, threshold),
    ], threads=threads)
    end = time.perf_counter()
    timings = {**prepared.timings_s, "infer": t_infer - start, "ood": end - t_infer}  # "ood": with uncertainty
    timings["total"] = prepared.timings_s.get("total", 0.0) + (end - start)
    return replace(result, timings_s=timings, quality=quality, ood_mask=ood.mask, ood_fraction=ood.fraction)


def classify(capture: Capture, model: LoadedModel, *, profile_name: str | None = None) -> ClassificationResult:
    """:func:`prepare` then :func:`classify_prepared`; "total" is measured around both."""
    start = time.perf_counter()
    result = classify_prepared(prepare(capture, profile_name=profile_name, threads=None), model)
    return _with_total(result, start)


def classify_files(
    raw_path: str | Path,
    model: LoadedModel,
    *,
    dark: str | Path | None = None,
    white: str | Path | None = None,
    profile_name: str | None = None,
) -> ClassificationResult:
    """:func:`prepare_files` then :func:`classify_prepared`; "total" is measured around both."""
    start = time.perf_counter()
    result = classify_prepared(prepare_files(raw_path, dark, white, profile_name=profile_name), model)
    return _with_total(result, start)


def _with_total(result: ClassificationResult, start: float) -> ClassificationResult:
    """``result`` with "total" = wall clock since ``start`` (``time.perf_counter``)."""
    return replace(result, timings_s={**result.timings_s, "total": time.perf_counter() - start})


def warm_up(model: LoadedModel, *, threads: int | None = None, full_sensor: bool = False) -> float | None:
    """Classify one synthetic frame of the model's camera profile and throw the map away; seconds taken.

    A process's first classification pays once for what later ones reuse (the profile and
    its SCM read, torch's and BLAS's thread pools, first-touch of large buffers): measured on
    the scoring service, the first request's preprocessing took 650 ms and the second 27 ms
    (docs/benchmarks/remote.md). Calling this where the process starts (the service's
    ``init()``) moves that cost out of the first user's wait. None when the model's profile is
    not a built-in one (nothing to warm with). ``threads``: as the real maps will ask (the
    ONNX Runtime session is per thread count). ``full_sensor``: a frame of the whole sensor
    rather than the smallest one the profile accepts (for the thesis profile both give the
    217 x 409 cube), so the runtime's buffers are made at the size real captures have.
    """
    from core.capture.camera_profiles import load_profile
    from core.errors import ProfileError

    start = time.perf_counter()
    try:
        profile = load_profile(model.info.profile_id)
    except (ProfileError, OSError, ValueError):
        return None
    from core.capture.synthetic.captures import metadata_for

    rows, cols = profile.sensor_shape if full_sensor else profile.min_frame_shape
    rng = np.random.default_rng(0)
    dark = np.full((rows, cols), 64, np.uint16)
    white = np.full((rows, cols), 900, np.uint16)
    raw = rng.integers(200, 800, size=(rows, cols), dtype=np.uint16)
    # With camera metadata, as real captures come: resolving a profile from it imports
    # scipy.optimize (band order, 0.6-1.2 s), the largest part of the first request's wait.
    capture = Capture(raw, dark, white, metadata_for(profile))
    classify_prepared(prepare(capture, threads=threads), model, threads=threads)
    return time.perf_counter() - start
