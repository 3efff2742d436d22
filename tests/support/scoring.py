"""Scoring-service test helpers: a small random-weight model, small synthetic captures, loopback checks.

Servers themselves come from :func:`remote.scoring_server.local_scoring_server`
(a real ``azureml-inference-server-http`` on 127.0.0.1, always stopped).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.capture.files import Capture, frame_to_bytes, write_frame
from core.model.files import ModelInfo, save_model

CLASS_IDS = (1, 2, 3, 4, 5)
CLASS_NAMES = ("healthy", "tumour", "venous blood", "arterial blood", "dura mater")


def save_random_model(path: str | Path, *, profile_id: str, seed: int = 0, name: str = "test-model") -> ModelInfo:
    """A Conv2DNet with seeded random weights saved as a NeuroHSI model file for ``profile_id``."""
    import torch

    from core.model.network import Conv2DNet

    torch.manual_seed(seed)
    net = Conv2DNet(25, len(CLASS_IDS))
    return save_model(
        path, net, name=name, class_ids=CLASS_IDS, class_names=CLASS_NAMES, profile_id=profile_id,
        created="2026-01-01T00:00:00Z",
    )


def small_capture(seed: int, *, height: int = 24, width: int = 32) -> Capture:
    """A synthetic capture of a tiny thesis-like camera (frames (5h+3, 5w+3) uint16, Ximea metadata)."""
    from core.capture.synthetic.captures import generate_capture, small_profile

    synthetic = generate_capture(seed=seed, profile=small_profile(height, width))
    return Capture(synthetic.raw, synthetic.dark, synthetic.white, synthetic.metadata, capture_id=synthetic.capture_id)


def profile_id_of(capture: Capture) -> str:
    """The camera profile the scoring pipeline resolves for ``capture`` (what a model must be made for)."""
    from core.capture.camera_profiles import resolve_profile

    return resolve_profile(capture.metadata).id


def capture_tiffs(capture: Capture) -> tuple[bytes, bytes, bytes]:
    """The TIFF bytes of raw (with metadata), dark and white."""
    return (
        frame_to_bytes(capture.raw, capture.metadata),
        frame_to_bytes(capture.dark, capture.metadata),
        frame_to_bytes(capture.white, capture.metadata),
    )


def write_capture(folder: str | Path, capture: Capture, name: str = "ID0001C01") -> Path:
    """Write ``capture`` as a NEMESIS-named triplet in ``folder``; return the raw path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base, n = name.split("C")
    raw_path = write_frame(folder / f"{name}.tif", capture.raw, capture.metadata)
    write_frame(folder / f"{base}CD{n}.tif", capture.dark, capture.metadata)
    write_frame(folder / f"{base}CW{n}.tif", capture.white, capture.metadata)
    return raw_path


def listening_addresses(port: int) -> list[tuple[str, int]]:
    """Local addresses of every listening socket of the process serving ``port`` and its children."""
    import psutil

    owners = {c.pid for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    if not owners:
        return []
    processes = []
    for pid in owners:
        if pid is None:
            continue
        proc = psutil.Process(pid)
        processes += [proc, *proc.children(recursive=True)]
    addresses = set()
    for proc in processes:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    addresses.add((conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return sorted(addresses)


def thesis_json_request(capture: Capture, *, patient_id: str = "ID0018") -> dict:
    """The seed thesis's scoring request for ``capture`` (frames as nested integer lists)."""
    return {
        "raw_image": np.asarray(capture.raw).tolist(),
        "white_ref": np.asarray(capture.white).tolist(),
        "black_ref": np.asarray(capture.dark).tolist(),
        "patch_size": 7,
        "batch_size": 1024,
        "patient_id": patient_id,
    }
