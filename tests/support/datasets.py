"""Small synthetic dataset folders for the training and cloud tests."""
from __future__ import annotations

from pathlib import Path


def write_small_dataset(root: Path, patients=("ID30", "ID30", "ID34")) -> Path:
    """``root`` as a dataset folder of one small synthetic capture per entry of ``patients``
    (capture ids ``ID00<nn>C<k>``), written as the dataset writer writes them; returns ``root``."""
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    profile = small_profile()
    for i, patient in enumerate(patients):
        c = generate_capture(seed=i, patient=patient, profile=profile)
        write_capture_folder(root, f"ID00{patient[2:]}C{i + 1:02d}", c.raw, c.dark, c.white, c.labels,
                             metadata=c.metadata, meta={"patient": patient})
    return root
