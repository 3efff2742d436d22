"""Synthetic captures: seeded scenes, frames and class statistics from real brain spectra, for the demo and for tests."""
