"""Setup time only: dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) read from dlib's
own file format into NumPy and rebuilt in TensorFlow, for the setup step to convert it to a LiteRT flatbuffer
(photo_assets.network_conversion). The analysis runs the flatbuffer (photo_assets.analysis.faces) and needs neither
this module nor TensorFlow; dlib itself (dlib-bin) only gives the landmarks and chips there.

The network is the `anet_type` of dlib's examples/dnn_face_recognition_ex.cpp:

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    block<N,stride>  = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, x>>>>>>
    ares<N>          = relu<add_prev1<block<N,1, tag1<x>>>>                 (shortcut: x)
    ares_down<N>     = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2, tag1<x>>>>>>>>
                                                                             (shortcut: avg_pool(x), 2x2 stride 2)
    alevel4 = 3 x ares<32>;  alevel3 = ares_down<64> + 3 x ares<64>;  alevel2 = ares_down<128> + 2 x ares<128>;
    alevel1 = ares_down<256> + 2 x ares<256>;  alevel0 = ares_down<256>

dlib's serialization (dlib/serialize.h, dlib/dnn/*.h) as found in this file:
  * integers: one byte = number of following bytes (low nibble) | 0x80 if negative, then the magnitude little-endian.
  * bool: the ASCII character '1' or '0'.  std::string: integer length then bytes.
  * float/double: "float_details": integer mantissa (int64) then integer exponent (int16); value = m * 2**e
    (exponent 32000/32001/32002 = +inf/-inf/nan).
  * tensor (version 2): int version, num_samples, k, nr, nc, then raw little-endian float32 data.
  * alias_tensor: int version(1), num_samples, k, nr, nc (shape only; views into the layer's params in order).
  * add_loss_layer: int version(1), loss details, subnet.  add_layer: int version(2) [3 for the input layer],
    subnet (or the input layer), layer details, bool setup_called, bool grad_stale, bool disabled, x_grad tensor,
    cached_output tensor, params_grad tensor; the add_layer on the input layer then adds int sample_expansion_factor.
    tag/skip layers: int version(1), subnet (no details).
    Hence all version integers come first (outermost first), then the layers' details innermost (input) first.
  * con_4: string, params tensor, num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x, filters alias
    [num_filters, k, nr, nc], biases alias [1, num_filters, 1, 1], 4 doubles (lr/wd multipliers).
  * affine_: string, params tensor (gamma then beta), gamma alias, beta alias, int mode (0 = per channel).
    (A file saved with training-time bn_con2 layers is not supported; this one has affine_ throughout.)
  * relu_, add_prev_: string only.  max_pool_2/avg_pool_2: string, nr, nc, stride_y, stride_x, padding_y, padding_x
    (nr=nc=0: pool everything).
  * fc_2: string, num_outputs, num_inputs, params tensor, weights alias [num_inputs, num_outputs], biases alias,
    int bias_mode (1 = no bias), 4 doubles.
  * input_rgb_image_sized: string, 3 floats (avg red, green, blue), nr, nc.  Input = (pixel - avg) / 256, RGB planes.
  * dlib's add_prev_ adds tensors of different shapes by zero-padding the smaller one at its end (channels, rows,
    columns): channel growth 32->64->128->256 pads the shortcut's channels, and at 8x8 -> 3x3 (conv) vs 4x4 (avg pool)
    and 4x4 -> 1x1 vs 2x2 the block's output sits in the top-left corner of the pooled shortcut.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


# ----------------------------------------------------------------------------------------------- dlib stream reader
class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise ValueError(f"bad dlib integer header 0x{head:02x} at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def bool(self) -> bool:
        char = self.data[self.pos:self.pos + 1]
        if char not in (b"0", b"1"):
            raise ValueError(f"bad dlib bool {char!r} at offset {self.pos}")
        self.pos += 1
        return char == b"1"

    def string(self) -> str:
        size = self.int()
        text = self.data[self.pos:self.pos + size].decode("ascii")
        self.pos += size
        return text

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent == 32000:
            return float("inf")
        if exponent == 32001:
            return float("-inf")
        if exponent == 32002:
            return float("nan")
        return float(mantissa) * 2.0 ** exponent

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"tensor version {version} not supported (offset {self.pos})")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values.reshape(shape)

    def alias(self) -> tuple[int, ...]:
        version = self.int()
        if version != 1:
            raise ValueError(f"alias_tensor version {version} not supported")
        return tuple(self.int() for _ in range(4))


@dataclasses.dataclass
class Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc
    params: dict


@dataclasses.dataclass
class DlibNet:
    input_mean: np.ndarray  # (3,) R, G, B
    input_size: tuple[int, int]
    layers: list[Layer]  # forward order (input side first)
    loss: dict


def _read_details(reader: _Reader) -> Layer:
    name = reader.string()
    if name == "con_4":
        params = reader.tensor().reshape(-1)
        num_filters, nr, nc = reader.int(), reader.int(), reader.int()
        stride = (reader.int(), reader.int())
        padding = (reader.int(), reader.int())
        filters_shape, biases_shape = reader.alias(), reader.alias()
        for _ in range(4):
            reader.float()
        count = int(np.prod(filters_shape))
        filters = params[:count].reshape(filters_shape)  # [num_filters, k, nr, nc]
        biases = params[count:count + int(np.prod(biases_shape))].reshape(-1)
        assert filters_shape[0] == num_filters and filters_shape[2:] == (nr, nc)
        return Layer("con", dict(filters=filters, biases=biases, stride=stride, padding=padding))
    if name == "affine_":
        params = reader.tensor().reshape(-1)
        gamma_shape, beta_shape = reader.alias(), reader.alias()
        mode = reader.int()
        n = int(np.prod(gamma_shape))
        return Layer("affine", dict(gamma=params[:n].copy(), beta=params[n:n + int(np.prod(beta_shape))].copy(),
                                    mode=mode))
    if name.startswith("relu_"):
        return Layer("relu", {})
    if name.startswith("add_prev_"):
        return Layer("add_prev", {})
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (reader.int() for _ in range(6))
        return Layer(name[:-2], dict(size=(nr, nc), stride=(sy, sx), padding=(py, px)))
    if name == "fc_2":
        num_outputs, num_inputs = reader.int(), reader.int()
        params = reader.tensor().reshape(-1)
        weights_shape, biases_shape = reader.alias(), reader.alias()
        bias_mode = reader.int()
        for _ in range(4):
            reader.float()
        count = int(np.prod(weights_shape))
        weights = params[:count].reshape(num_inputs, num_outputs)
        biases = params[count:count + num_outputs] if bias_mode == 0 else None
        return Layer("fc", dict(weights=weights, biases=biases))
    raise ValueError(f"layer {name!r} not supported")


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a serialized dlib network (loss_metric over a chain of add_layer/tag/skip) into numpy parameters."""
    reader = _Reader(Path(path).read_bytes())
    if reader.int() != 1:
        raise ValueError("not an add_loss_layer (version 1)")
    loss_name = reader.string()
    if loss_name != "loss_metric_2":
        raise ValueError(f"loss {loss_name!r} not supported")
    loss = dict(margin=reader.float(), distance_threshold=reader.float())
    # The nested versions: 2 = add_layer (has details), 1 = tag/skip layer (none), 3 = add_layer on the input layer.
    with_details = 0
    while True:
        version = reader.int()
        if version == 3:
            break
        if version == 2:
            with_details += 1
        elif version != 1:
            raise ValueError(f"unexpected layer version {version} at {reader.pos}")
    input_name = reader.string()
    if input_name != "input_rgb_image_sized":
        raise ValueError(f"input layer {input_name!r} not supported")
    mean = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    size = (reader.int(), reader.int())
    layers = []
    for index in range(with_details + 1):  # the input add_layer's own layer, then every add_layer outward
        layers.append(_read_details(reader))
        reader.bool(), reader.bool(), reader.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad: empty in a saved model
            reader.tensor()
        if index == 0:  # the add_layer over the input layer (version 3) also saves its sample expansion factor
            if reader.int() != 1:
                raise ValueError("sample expansion factor other than 1 not supported")
    if reader.pos != len(reader.data):
        raise ValueError(f"{len(reader.data) - reader.pos} trailing bytes")
    return DlibNet(mean, size, layers, loss)


# ------------------------------------------------------------------------------------------- network structure
@dataclasses.dataclass
class ConvSpec:
    """A convolution with the following affine folded in: HWIO kernel and bias, float32."""
    kernel: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int


def _fold(conv: Layer, affine: Layer) -> ConvSpec:
    filters = conv.params["filters"].astype(np.float64)  # [O, I, H, W]
    gamma = affine.params["gamma"].astype(np.float64)
    beta = affine.params["beta"].astype(np.float64)
    kernel = (filters * gamma[:, None, None, None]).transpose(2, 3, 1, 0)  # HWIO
    bias = conv.params["biases"].astype(np.float64) * gamma + beta
    sy, sx = conv.params["stride"]
    py, px = conv.params["padding"]
    assert sy == sx and py == px
    return ConvSpec(kernel.astype(np.float32), bias.astype(np.float32), sy, py)


def network_plan(net: DlibNet):
    """The layers grouped as: stem conv, stem max pool, residual blocks (conv1, conv2, down), final fc weights."""
    layers = list(net.layers)
    kinds = [layer.kind for layer in layers]
    assert kinds[:4] == ["con", "affine", "relu", "max_pool"], kinds[:4]
    stem = _fold(layers[0], layers[1])
    pool = layers[3].params
    blocks = []
    index = 4
    while kinds[index] == "con":
        body = kinds[index:index + 5]
        assert body == ["con", "affine", "relu", "con", "affine"], body
        conv1, conv2 = _fold(layers[index], layers[index + 1]), _fold(layers[index + 3], layers[index + 4])
        index += 5
        down = None
        if kinds[index] == "avg_pool":
            down = layers[index].params
            assert down["size"] == (2, 2) and down["stride"] == (2, 2) and down["padding"] == (0, 0), down
            index += 1
        assert kinds[index:index + 2] == ["add_prev", "relu"], kinds[index:index + 2]
        index += 2
        blocks.append((conv1, conv2, down))
    assert kinds[index] == "avg_pool" and layers[index].params["size"] == (0, 0), kinds[index]  # avg_pool_everything
    assert kinds[index + 1] == "fc" and index + 2 == len(layers)
    fc = layers[index + 1].params
    assert fc["biases"] is None
    return stem, pool, blocks, fc["weights"]


# ---------------------------------------------------------------------------------------- TensorFlow / LiteRT
def build_tf_function(net: DlibNet):
    """A function of uint8-valued float32 RGB chips [n, 150, 150, 3] -> dlib descriptors [n, 128] (not normalised),
    the preprocessing included."""
    import tensorflow as tf

    stem, pool, blocks, fc = network_plan(net)
    mean = tf.constant(net.input_mean.reshape(1, 1, 1, 3))

    def conv(x, spec: ConvSpec):
        if spec.padding:
            if spec.stride == 1 and spec.kernel.shape[0] == 2 * spec.padding + 1:
                return tf.nn.bias_add(tf.nn.conv2d(x, spec.kernel, 1, "SAME"), spec.bias)
            p = spec.padding
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        return tf.nn.bias_add(tf.nn.conv2d(x, spec.kernel, spec.stride, "VALID"), spec.bias)

    def add_padded(a, b):
        sa, sb = a.shape[1:], b.shape[1:]
        target = [max(u, v) for u, v in zip(sa, sb)]
        if list(sa) != target:
            a = tf.pad(a, [[0, 0]] + [[0, t - u] for t, u in zip(target, sa)])
        if list(sb) != target:
            b = tf.pad(b, [[0, 0]] + [[0, t - u] for t, u in zip(target, sb)])
        return a + b

    def forward(images):
        x = (images - mean) * (1.0 / 256.0)
        x = tf.nn.relu(conv(x, stem))
        x = tf.nn.max_pool2d(x, pool["size"], pool["stride"], "VALID")
        for conv1, conv2, down in blocks:
            y = conv(tf.nn.relu(conv(x, conv1)), conv2)
            shortcut = tf.nn.avg_pool2d(x, 2, 2, "VALID") if down else x
            x = tf.nn.relu(add_padded(y, shortcut))
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.matmul(x, fc)

    return forward


def build_tf_module(net: DlibNet):
    """A tf.Module called as module(images, training=False) -> [n, 128], as a Keras model is: what
    photo_assets.network_conversion converts, like the other networks, at a 150 x 150 input."""
    import tensorflow as tf

    forward = build_tf_function(net)

    class DlibResNet(tf.Module):
        def __call__(self, images, training=False):
            return forward(images)

    return DlibResNet()
