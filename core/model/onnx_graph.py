"""The dense network (:class:`core.model.network.DenseConv2DNet`) as an ONNX model, in bytes.

Written here, in the protocol-buffer wire format of ``onnx.proto`` (IR version 8, opset 17),
rather than with ``torch.onnx.export``, which needs the ``onnx`` package (31 MB) for a
graph of eight nodes:

    cube (1, H, W, B) -> Pad p//2 (the model file's mode) -> Transpose to (1, B, H+p-1, W+p-1)
        -> Conv k=2 -> MaxPool 2x2 stride 1 -> Relu
        -> Conv k=q dilation 2 (fc1) -> Relu -> Conv 1x1 (fc2) -> logits (1, C, H, W)

The cube goes in as the pipeline holds it, ``(H, W, B)``: padding and the change of layout in
the graph save numpy's transposing pad (~3 ms of the ~27 ms a full map, one thread; ONNX
Runtime folds the transpose into its own blocked-layout reorder). ``H`` and ``W`` are
symbolic: one model serves every capture size. Weights are stored
float32 little-endian (``raw_data``), bit for bit those of the network. The parity of
the two runtimes (torch and ONNX Runtime) is tested, not assumed
(tests/core/test_onnx_runtime.py).
"""
from __future__ import annotations

import numpy as np

IR_VERSION = 8
OPSET = 17
FLOAT, INT64 = 1, 7  # TensorProto.DataType
_INT, _STRING, _INTS = 2, 3, 7  # AttributeProto.AttributeType
INPUT, OUTPUT = "cube", "logits"
# The model file's padding modes in ONNX Pad's vocabulary ("constant" pads with 0).
ONNX_PADDING_MODES = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}


# -- protocol-buffer wire format -----------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as two's complement, as protobuf writes negatives
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


# -- onnx.proto messages (field numbers as in onnx.proto) ----------------------------------


def _tensor(name: str, array: np.ndarray) -> bytes:
    """TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (float32, or int64 for integers)."""
    integer = np.asarray(array).dtype.kind in "iu"
    data = np.ascontiguousarray(array, dtype="<i8" if integer else "<f4")
    return (b"".join(_int(1, d) for d in data.shape) + _int(2, INT64 if integer else FLOAT) + _bytes(8, name)
            + _bytes(9, data.tobytes()))


def _attribute(name: str, value: int | str | tuple[int, ...]) -> bytes:
    """AttributeProto: name = 1, i = 3, s = 4, ints = 8, type = 20."""
    if isinstance(value, tuple):
        return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _INTS)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, _STRING)
    return _bytes(1, name) + _int(3, value) + _int(20, _INT)


def _node(op: str, inputs: list[str], outputs: list[str], **attributes) -> bytes:
    """NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5."""
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, outputs[0]) + _bytes(4, op)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items()))


def _value_info(name: str, dims: tuple[int | str, ...]) -> bytes:
    """ValueInfoProto{name = 1, type = 2: TypeProto{tensor_type = 1: {elem_type = 1, shape = 2}}}.

    Each TensorShapeProto.dim (field 1) is dim_value = 1 (a number) or dim_param = 2 (a name).
    """
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    tensor_type = _int(1, FLOAT) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def dense_onnx_model(dense, padding: str | None = None) -> bytes:
    """``dense`` (a :class:`~core.model.network.DenseConv2DNet`) as an ONNX ModelProto (bytes).

    Input ``cube`` float32 ``(1, H, W, B)``, unpadded; it is padded by ``p // 2`` with
    ``padding`` (a model file's mode; default ``dense.padding``), as ``DenseConv2DNet.forward``
    pads. Output ``logits`` float32 ``(1, C, H, W)``. A reflect pad needs ``H, W > p // 2``
    (the caller checks: ONNX Runtime's own error would not say why).
    """
    weights = {name: tensor.detach().cpu().numpy() for name, tensor in dense.state_dict().items()}
    half = dense.patch_size // 2
    weights["pads"] = np.array([0, half, half, 0, 0, half, half, 0], np.int64)  # (begins, ends) per axis of NHWC
    q = int(dense.fc1.kernel_size[0])
    nodes = [
        _node("Pad", [INPUT, "pads"], ["padded_hwc"], mode=ONNX_PADDING_MODES[padding or dense.padding]),
        _node("Transpose", ["padded_hwc"], ["padded"], perm=(0, 3, 1, 2)),
        _node("Conv", ["padded", "conv.weight", "conv.bias"], ["conv"], kernel_shape=(2, 2)),
        _node("MaxPool", ["conv"], ["pool"], kernel_shape=(2, 2), strides=(1, 1)),
        _node("Relu", ["pool"], ["pool_relu"]),
        _node("Conv", ["pool_relu", "fc1.weight", "fc1.bias"], ["fc1"], kernel_shape=(q, q), dilations=(2, 2)),
        _node("Relu", ["fc1"], ["fc1_relu"]),
        _node("Conv", ["fc1_relu", "fc2.weight", "fc2.bias"], [OUTPUT], kernel_shape=(1, 1)),
    ]
    # GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
    graph = (
        b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "neurohsi_dense_conv2dnet")
        + b"".join(_bytes(5, _tensor(name, array)) for name, array in weights.items())
        + _bytes(11, _value_info(INPUT, (1, "height", "width", dense.n_bands)))
        + _bytes(12, _value_info(OUTPUT, (1, dense.n_classes, "height", "width")))
    )
    # ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 {version = 2}.
    return _int(1, IR_VERSION) + _bytes(2, "neurohsi") + _bytes(7, graph) + _bytes(8, _int(2, OPSET))

