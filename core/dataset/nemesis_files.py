"""The NEMESIS archive's MATLAB files, read as the thesis's data manager reads them.

Three forms (``Libraries/hsi_dataManager.py`` of the thesis's repository):

* ``<ID>_dataset.mat`` (``DatasetManager``): ``data`` (N, 25) float64 RMS-normalised
  spectra after the chain, ``label`` (N, 1) NEMESIS codes, ``label4Classes`` (N, 1)
  class ids 1..5. The rows are the labelled pixels (code > 0) of the capture's
  ground-truth map taken in MATLAB column-major order, so each row's (row, col) is
  recovered from ``groundTruthMap`` when that file is there (:func:`recover_positions`).
* ``SNAPgt<ID>_cropped_Pre-processed.mat``: ``groundTruthMap`` (H, W) uint16 NEMESIS codes,
  0 = not labelled, beside a MATLAB struct ``dataResults`` that is never read.
* ``SNAPimages<ID>_cropped_Pre-processed.mat`` (``CubeManager``): ``preProcessedImage``
  (H, W, 25) preprocessed cube. The ``.npz`` that ``neurohsi preprocess`` writes is the
  same kind of capture and is read here too.

Every ``.mat`` is sized from its variables' headers (:func:`core.dataset.mat_limits.check_mat_sizes`,
a few KB whatever the file declares) and then with ``scipy.io.whosmat`` before it is read, so a
huge or mislabelled file is refused in one line instead of filling memory; only the named
variables are loaded (the ``dataResults`` struct holds images and is skipped).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from core.labels.maps import map_nemesis_codes
from core.labels.nemesis import kind_name

# 64 M elements (512 MB as float64): a full preprocessed NEMESIS cube (217 x 409 x 25)
# is 2.2 M; anything far larger is not a NEMESIS capture.
MAX_MAT_ELEMENTS = 64 * 1024 * 1024
# A NEMESIS .mat holds at most a cube (217 x 409 x 25 float64: 18 MB) or ground truth; more
# declared bytes than this is a damaged or crafted file, refused before scipy inflates it.
MAX_MAT_BYTES = 64_000_000
# The thesis's camera: files without wavelengths are read as this profile's output bands.
ASSUMED_PROFILE = "thesis-sm5x5-nir"
ASSUMED_BANDS = 25  # that camera's output bands: labelled spectra of another length are refused


def _mat_error(path: Path, exc: BaseException) -> DatasetError:
    return DatasetError(path, f"not a readable MATLAB .mat file ({exc.__class__.__name__}: {' '.join(str(exc).split())})")


def mat_variables(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Variable name -> declared shape of a ``.mat`` file, read from its headers only.

    ``DatasetError`` (one line) for a missing, corrupt or v7.3 file, or a variable
    declared larger than :data:`MAX_MAT_ELEMENTS` elements.
    """
    import zlib

    import scipy.io
    from scipy.io.matlab import MatReadError

    from core.dataset.mat_limits import check_mat_sizes

    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file not found" if not path.exists() else "is not a file")
    check_mat_sizes(path, MAX_MAT_BYTES)  # whosmat itself inflates a compressed variable whole
    try:
        found = scipy.io.whosmat(path)
    except NotImplementedError:
        raise DatasetError(path, "MATLAB v7.3 (HDF5) .mat files are not supported; re-save it with save(..., '-v7')") from None
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, MatReadError, OverflowError,
            zlib.error) as exc:
        # scipy reports damaged files with many exception types; all mean "cannot read this file".
        raise _mat_error(path, exc) from None
    shapes = {}
    for name, shape, _cls in found:
        elements = int(np.prod(shape, dtype=np.float64)) if shape else 1
        if elements > MAX_MAT_ELEMENTS:
            raise DatasetError(
                path, f"variable {name!r} is declared {'x'.join(map(str, shape))} ({elements} values), "
                f"more than the {MAX_MAT_ELEMENTS} a NEMESIS capture can hold; not read"
            )
        shapes[name] = tuple(int(s) for s in shape)
    return shapes


def load_mat(path: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The variables ``names`` of a ``.mat`` file (sizes checked first); ``DatasetError`` naming a missing one."""
    import zlib

    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(path)
    shapes = mat_variables(path)
    missing = [n for n in names if n not in shapes]
    if missing:
        found = ", ".join(shapes) or "none"
        raise DatasetError(path, f"no {missing[0]!r} variable (found: {found})")
    try:
        content = scipy.io.loadmat(path, variable_names=list(names))
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, MatReadError, NotImplementedError,
            OverflowError, MemoryError, zlib.error) as exc:
        raise _mat_error(path, exc) from None
    return {n: content[n] for n in names}


def _numbers(path: Path, key: str, values: np.ndarray) -> np.ndarray:
    # A MATLAB char array or cell reads as text or objects: say so rather than fail inside numpy.
    if values.dtype.kind not in "iuf":
        raise DatasetError(path, f"{key!r} must hold numbers, got {kind_name(values.dtype)}")
    return values


@dataclass(frozen=True)
class NemesisSpectra:
    """The labelled spectra of one NEMESIS capture (``<ID>_dataset.mat``)."""

    data: np.ndarray  # float64 (N, B) preprocessed (RMS-normalised) spectra
    label: np.ndarray  # uint16 (N,) raw NEMESIS codes
    label4classes: np.ndarray  # uint8 (N,) class ids 1..5


def read_nemesis_spectra(path: str | Path, *, n_bands: int | None = None) -> NemesisSpectra:
    """Read ``<ID>_dataset.mat`` (keys ``data`` N x B, ``label``, ``label4Classes``).

    ``n_bands``: the band count the spectra must have (the capture's cube, or the assumed
    camera profile's); spectra of another length are refused. Spectra must be finite;
    ``label`` must hold NEMESIS codes (integers 0..65535).
    """
    path = Path(path)
    content = load_mat(path, ("data", "label", "label4Classes"))
    data = _numbers(path, "data", np.asarray(content["data"]))
    label = _numbers(path, "label", np.asarray(content["label"])).ravel()
    label4 = _numbers(path, "label4Classes", np.asarray(content["label4Classes"])).ravel()
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise DatasetError(path, f"'data' must be N x bands, got shape {data.shape}")
    if len(label) != len(data) or len(label4) != len(data):
        raise DatasetError(path, f"{len(data)} spectra but {len(label)} labels and {len(label4)} label4Classes")
    if n_bands is not None and data.shape[1] != n_bands:
        raise DatasetError(path, f"spectra have {data.shape[1]} bands, the capture needs {n_bands}")
    # MATLAB stores the codes as double: -5 or 1.5 would wrap or truncate silently in uint16 (-5 -> 65531).
    if label.size and (
        not np.isfinite(label).all() or label.min() < 0 or label.max() > 65535 or not np.all(label == np.round(label))
    ):
        raise DatasetError(path, "'label' holds values that are not NEMESIS codes (integers 0..65535)")
    if label4.size and (not np.isfinite(label4).all() or label4.min() < 0 or label4.max() > 5
                        or not np.all(label4 == np.round(label4))):
        raise DatasetError(path, "'label4Classes' holds values other than the class ids 0..5")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise DatasetError(path, f"'data' holds NaN or infinite values in {bad} of {len(data)} spectra")
    return NemesisSpectra(data, label.astype(np.uint16), label4.astype(np.uint8))


def read_ground_truth_codes(path: str | Path) -> np.ndarray:
    """``groundTruthMap`` of ``SNAPgt<ID>_cropped_Pre-processed.mat``: raw NEMESIS codes, int64 (H, W)."""
    path = Path(path)
    codes = np.asarray(load_mat(path, ("groundTruthMap",))["groundTruthMap"])
    if codes.ndim != 2:
        raise DatasetError(path, f"'groundTruthMap' must be 2-D, got shape {codes.shape}")
    if codes.dtype.kind not in "iuf":
        # A logical map (true/false) holds no class codes; importing it would label nothing, silently.
        raise DatasetError(path, f"'groundTruthMap' must hold NEMESIS class codes (numbers), got {kind_name(codes.dtype)}")
    return codes


def read_nemesis_ground_truth(path: str | Path) -> np.ndarray:
    """Read ``SNAPgt<ID>_cropped_Pre-processed.mat`` (``groundTruthMap``) as uint8 class ids (H, W)."""
    path = Path(path)
    codes = read_ground_truth_codes(path)
    try:
        labels = map_nemesis_codes(codes)
    except ValueError as exc:
        raise DatasetError(path, str(exc)) from None
    if not labels.any() and (codes.size == 0 or codes.max() <= 0):
        # As an all-background map: importing it would train on a capture labelled nowhere.
        raise DatasetError(path, "'groundTruthMap' labels no pixel (all zero)")
    if codes.size and codes.max() > 0 and not labels.any():
        # MATLAB saves a logical mask as uint8 0/1: it would import as "nothing labelled", silently.
        found = ", ".join(str(int(v)) for v in np.unique(codes)[:8])
        raise DatasetError(
            path, f"'groundTruthMap' labels no pixel with a NEMESIS class code (values found: {found}); a logical mask?"
        )
    return labels


def recover_positions(codes: np.ndarray, spectra: NemesisSpectra, *, gt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int64 (N,) of each spectrum in the ground-truth map ``codes`` (H, W).

    The rows of ``_dataset.mat`` are the map's labelled pixels (code > 0) in MATLAB
    column-major order. ``DatasetError`` when the counts or the codes disagree (the two
    files are not of one capture).
    """
    # Column-major order = row-major order of the transposed map.
    cols, rows = np.nonzero(codes.T > 0)
    n = len(spectra.label)
    if rows.size != n:
        raise DatasetError(gt_path, f"map labels {rows.size} pixels but the spectra file holds {n} rows; "
                                    "not the same capture")
    if n and not np.array_equal(codes[rows, cols].astype(np.int64), spectra.label.astype(np.int64)):
        bad = int(np.flatnonzero(codes[rows, cols].astype(np.int64) != spectra.label)[0])
        raise DatasetError(gt_path, f"map code {int(codes[rows[bad], cols[bad]])} at ({rows[bad]}, {cols[bad]}) differs "
                                    f"from spectrum row {bad}'s label {int(spectra.label[bad])}; not the same capture")
    return rows.astype(np.int64), cols.astype(np.int64)


@dataclass(frozen=True)
class PreprocessedCube:
    """A preprocessed cube read from a file: ``.mat`` ``preProcessedImage`` or a ``neurohsi preprocess`` ``.npz``."""

    data: np.ndarray  # float32 (H, W, B), RMS-normalised; invalid pixels 0
    valid: np.ndarray  # bool (H, W)
    wavelengths_nm: np.ndarray | None  # float32 (B,)
    profile_id: str
    wavelengths_assumed: bool  # True when the file carried none and the thesis camera's are assumed
    source: Path

    def to_cube(self):
        """A :class:`core.spectral.chain.Cube` (what classification and the quality checks take)."""
        from core.spectral.chain import Cube

        return Cube(self.data, self.valid, self.wavelengths_nm, self.profile_id, None, self.wavelengths_assumed,
                    (0, 0), f"preprocessed cube file {self.source.name}")


def assumed_wavelengths(n_bands: int) -> tuple[np.ndarray | None, str]:
    """Band centres (nm) of the thesis camera's output, if it has ``n_bands`` bands, and its profile id."""
    from core.capture.camera_profiles import load_profile

    profile = load_profile(ASSUMED_PROFILE)
    if profile.wavelengths_nm is None or len(profile.wavelengths_nm) != n_bands:
        return None, ASSUMED_PROFILE
    return np.asarray(profile.wavelengths_nm, dtype=np.float32), profile.id


def _checked_cube(path: Path, data: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    data = _numbers(path, "cube", np.asarray(data))
    if data.ndim != 3 or min(data.shape) < 1:
        raise DatasetError(path, f"cube must be H x W x bands, got shape {data.shape}")
    finite = np.isfinite(data).all(axis=-1)
    valid = finite if valid is None else (np.asarray(valid, dtype=bool) & finite)
    if valid.shape != data.shape[:2]:
        raise DatasetError(path, f"validity mask {valid.shape} does not match the cube's {data.shape[:2]}")
    # A pixel whose spectrum is all zero cannot be RMS-normalised: the chain marks such pixels invalid.
    valid &= np.abs(np.nan_to_num(data)).sum(axis=-1) > 0
    out = np.where(valid[..., None], np.nan_to_num(data), 0).astype(np.float32)
    return out, valid


def read_preprocessed_cube(path: str | Path) -> PreprocessedCube:
    """Read a ``.mat`` (``preProcessedImage``) or ``.npz`` (``cube``, ``valid``, ``wavelengths_nm``) cube."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        shapes = mat_variables(path)
        if "preProcessedImage" not in shapes and {"data", "label4Classes"} <= set(shapes):
            raise DatasetError(path, "holds labelled spectra only (a NEMESIS _dataset.mat), no image to view or "
                                     "classify; import it with neurohsi import-nemesis to train or evaluate")
        data = load_mat(path, ("preProcessedImage",))["preProcessedImage"]
        data, valid = _checked_cube(path, data, None)
        wavelengths, profile_id = assumed_wavelengths(data.shape[-1])
        return PreprocessedCube(data, valid, wavelengths, profile_id, True, path)
    if path.suffix.lower() != ".npz":
        raise DatasetError(path, "not a preprocessed cube (.mat with preProcessedImage, or .npz from neurohsi preprocess)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "cube" not in npz.files:
                raise DatasetError(path, f"no 'cube' array (found: {', '.join(npz.files) or 'none'})")
            shape = npz["cube"].shape
            if int(np.prod(shape, dtype=np.float64)) > MAX_MAT_ELEMENTS:
                raise DatasetError(path, f"cube {shape} is too large")
            data = npz["cube"]
            valid = npz["valid"] if "valid" in npz.files else None
            wavelengths = np.asarray(npz["wavelengths_nm"], np.float32) if "wavelengths_nm" in npz.files else None
            description = json.loads(str(npz["description"])) if "description" in npz.files else {}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, json.JSONDecodeError) as exc:
        # np.load raises these for damaged archives and object arrays (never unpickled)
        raise DatasetError(path, f"not a readable .npz cube ({exc.__class__.__name__})") from None
    data, valid = _checked_cube(path, data, valid)
    assumed = wavelengths is None or wavelengths.size == 0
    profile_id = str(description.get("profile") or ASSUMED_PROFILE)
    if assumed:
        wavelengths, profile_id = assumed_wavelengths(data.shape[-1])
    elif wavelengths.shape != (data.shape[-1],):
        raise DatasetError(path, f"{wavelengths.size} wavelengths for {data.shape[-1]} bands")
    return PreprocessedCube(data, valid, wavelengths, profile_id, assumed, path)
