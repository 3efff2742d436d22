"""The spectral chain (calibrate, cube, SCM, RMS), synthetic RGB and the out-of-distribution check."""
