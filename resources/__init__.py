"""Data files shipped with NeuroHSI (camera profiles, class table, demo model)."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
CAMERAS_DIR = RESOURCES_DIR / "cameras"
MODELS_DIR = RESOURCES_DIR / "models"
SPECTRA_DIR = RESOURCES_DIR / "spectra"
DEMO_MODEL_PATH = MODELS_DIR / "demo.safetensors"
CLASS_TABLE_PATH = RESOURCES_DIR / "classes.json"
