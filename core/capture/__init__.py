"""Capture files: Ximea TIFF frames and their XML metadata, camera profiles, capture sources, quality checks, synthetic captures."""
