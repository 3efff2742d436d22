"""Inference device: CUDA where present, the CPU otherwise, never required; the choice logic runs on any machine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import core.model.device as device_module
from core.model.device import DEVICE_ENV, inference_device, on_device
from core.model.inference import predict_dense
from core.model.network import Conv2DNet, DenseConv2DNet


def _cuda(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_cuda_is_chosen_when_present_and_the_cpu_otherwise(monkeypatch):
    _cuda(monkeypatch, 1)
    assert inference_device(environ={}) == "cuda"
    _cuda(monkeypatch, 0)
    assert inference_device(environ={}) == "cpu"


def test_the_setting_wins_and_is_checked(monkeypatch):
    _cuda(monkeypatch, 2)
    assert inference_device(environ={DEVICE_ENV: "cpu"}) == "cpu"  # keep a shared GPU free
    assert inference_device(environ={DEVICE_ENV: " CUDA:1 "}) == "cuda:1"
    assert inference_device("cpu", environ={DEVICE_ENV: "cuda"}) == "cpu"  # an explicit argument wins
    assert inference_device(environ={DEVICE_ENV: ""}) == "cuda"  # empty: unset
    with pytest.raises(ValueError, match=f"{DEVICE_ENV} must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        inference_device(environ={DEVICE_ENV: "gpu"})
    with pytest.raises(ValueError, match="sees 2 CUDA device"):
        inference_device(environ={DEVICE_ENV: "cuda:2"})
    _cuda(monkeypatch, 0)
    with pytest.raises(ValueError, match="no CUDA device"):
        inference_device("cuda", environ={})


def test_the_cpu_uses_the_network_itself_and_other_devices_a_copy_made_once(monkeypatch):
    net = DenseConv2DNet()
    assert on_device(net, "cpu") is net
    # "meta" stands in for a GPU: a real device move, no GPU needed.
    monkeypatch.setattr(device_module, "_copies", device_module.weakref.WeakKeyDictionary())
    first = on_device(net, "meta")
    assert first is not net and next(first.parameters()).device.type == "meta"
    assert on_device(net, "meta") is first  # not copied again per capture
    assert next(net.parameters()).device.type == "cpu"  # the caller's network stays where it was


def test_predict_dense_on_the_cpu_by_name_is_the_default_path(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    torch.manual_seed(0)
    net = Conv2DNet().eval()
    cube = np.random.default_rng(0).standard_normal((12, 15, 25)).astype(np.float32)
    probs, labels = predict_dense(net, cube, device="cpu")
    probs_default, labels_default = predict_dense(net, cube)
    np.testing.assert_array_equal(labels, labels_default)
    np.testing.assert_allclose(probs, probs_default, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="device must be"):
        predict_dense(net, cube, device="tpu")
