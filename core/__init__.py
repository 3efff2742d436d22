"""NeuroHSI core: capture I/O, preprocessing, synthetic data, Conv2DNet.

Pure numpy (and torch in the model modules); never Qt or network code.
"""
