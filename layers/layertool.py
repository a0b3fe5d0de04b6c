"""Helpers for layers/build.sh: pin check, reproducible zip, size report.

Stdlib only, so the layer build needs nothing but a Python with pip. Kept out of the
shell script because byte-for-byte reproducible zips and exact size sums are easier
to get right here than with zip(1) and du(1), whose output depends on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Lambda's limit on a function's code plus all its layers, unzipped (250 MiB in bytes).
LAMBDA_UNZIPPED_LIMIT = 262_144_000
#: DOS epoch: the earliest timestamp a zip entry can hold. Fixed so rebuilding the
#: same pins gives the same bytes, and so the layer's content hash in the template
#: (and thus the deployed layer version) only changes when the content does.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name, so `typing_extensions` matches `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file; anything unpinned is an error."""
    pins: dict[str, str] = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        if not match:
            raise SystemExit(f"{requirements}: not an exact pin: {raw!r}")
        pins[normalize(match.group(1))] = match.group(2)
    return pins


def installed(site: Path) -> dict[str, str]:
    """Distributions pip put in a --target directory, read from their METADATA."""
    found: dict[str, str] = {}
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        fields = dict(
            line.split(": ", 1) for line in meta.read_text(errors="replace").splitlines()[:20] if ": " in line
        )
        found[normalize(fields["Name"])] = fields["Version"]
    return found


def check_pins(requirements: Path, site: Path) -> list[str]:
    """Differences between what is pinned and what pip installed (empty when they agree).

    pip resolves dependencies, so a new transitive dependency would otherwise slip into
    the layer unpinned; this makes the build fail instead.
    """
    pins = read_pins(requirements)
    have = installed(site)
    problems = [f"installed but not pinned: {n}=={v}" for n, v in sorted(have.items()) if n not in pins]
    problems += [f"pinned but not installed: {n}=={v}" for n, v in sorted(pins.items()) if n not in have]
    problems += [
        f"version differs: {n} pinned {pins[n]}, installed {have[n]}"
        for n in sorted(pins.keys() & have.keys())
        if pins[n] != have[n]
    ]
    return problems


#: Folder names of packages' own test suites: never imported by the code that runs (numpy's
#: and SciPy's alone were 41 MiB of the tracking layer's 211), so dropped from layers.
TEST_DIRS = frozenset({"tests"})


def prune_tests(site: Path) -> tuple[int, int]:
    """Remove every ``tests`` folder inside an installed package (not top-level
    distributions): returns (folders, bytes) removed. ``numpy.testing`` and the like, which
    code does import, are named differently and kept."""
    import shutil

    found = sorted(p for p in site.rglob("*") if p.is_dir() and p.name in TEST_DIRS and p.parent != site
                   and (p.parent / "__init__.py").exists())
    folders = removed = 0
    for folder in found:
        if not folder.exists():  # inside one removed already
            continue
        removed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        folders += 1
    return folders, removed


def walk_sorted(root: Path) -> Iterator[Path]:
    """Every file under root in a stable order (byte order of the relative path)."""
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        entries.extend(Path(dirpath, name) for name in filenames)
    yield from sorted(entries, key=lambda p: p.relative_to(root).as_posix().encode())


def reproducible_zip(src: Path, out: Path) -> int:
    """Zip src's contents (its top folder, e.g. python/, becomes the zip root's folder).

    Entries are sorted, dated FIXED_DATE, and given mode 0755 when executable else 0644,
    so the same files always give the same bytes whatever the umask, clock or file system.
    Returns the number of files.
    """
    tmp = out.with_suffix(out.suffix + ".tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in walk_sorted(src):
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=FIXED_DATE)
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode bits above are honoured when extracting
            zf.writestr(info, path.read_bytes(), compresslevel=6)
            count += 1
    tmp.replace(out)
    return count


def unzipped_size(archive: Path) -> int:
    """Bytes the archive takes once extracted, the figure Lambda's 250 MB limit is about."""
    with zipfile.ZipFile(archive) as zf:
        return sum(info.file_size for info in zf.infolist())


def mib(n: int) -> str:
    return f"{n / 1048576:7.1f} MiB"


def function_layers(template: Path) -> dict[str, list[str]]:
    """Function zip name -> layer zip names, read from the packaged CloudFormation template."""
    doc = json.loads(template.read_text())
    res = doc["Resources"]
    layer_zip = {
        lid: Path(r["Properties"]["Content"]["S3Key"]).name
        for lid, r in res.items()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    out: dict[str, list[str]] = {}
    for r in res.values():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        code = Path(r["Properties"]["Code"]["S3Key"]).name
        refs = [ref["Ref"] for ref in r["Properties"].get("Layers", []) if isinstance(ref, dict) and "Ref" in ref]
        out[code] = [layer_zip[ref] for ref in refs]
    return out


def report(layer_zips: Iterable[Path], serverless_dir: Path) -> list[str]:
    """Lines comparing each function's unzipped code + layers with Lambda's limit."""
    lines = ["Unzipped sizes (Lambda limit for code + layers: 250 MiB = 262,144,000 bytes):"]
    layers = {p.name: unzipped_size(p) for p in sorted(layer_zips)}
    for name, size in layers.items():
        lines.append(f"  layer    {name:<24} {mib(size)}  ({size:,} bytes)")
    template = serverless_dir / "cloudformation-template-update-stack.json"
    if not template.exists():
        total = sum(layers.values())
        share = 100 * total / LAMBDA_UNZIPPED_LIMIT
        lines.append(f"  all layers together              {mib(total)}  ({share:.0f}% of limit)")
        lines.append("  (run `make package` and then this again for per-function totals)")
        return lines
    for code, used in sorted(function_layers(template).items()):
        code_size = unzipped_size(serverless_dir / code)
        missing = [u for u in used if u not in layers]
        if missing:
            lines.append(f"  function {code:<24} layers not built: {', '.join(missing)}")
            continue
        total = code_size + sum(layers[u] for u in used)
        verdict = "OK" if total <= LAMBDA_UNZIPPED_LIMIT else "OVER LIMIT"
        lines.append(
            f"  function {code:<24} code {mib(code_size)} + layers [{', '.join(used)}] = {mib(total)}"
            f"  ({100 * total / LAMBDA_UNZIPPED_LIMIT:.0f}% of limit) {verdict}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check-pins", help="fail unless pip installed exactly the pinned distributions")
    p.add_argument("requirements", type=Path)
    p.add_argument("site", type=Path)
    p = sub.add_parser("prune-tests", help="remove the packages' own test suites from an installed site")
    p.add_argument("site", type=Path)
    p = sub.add_parser("zip", help="reproducible zip of a folder's contents")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("measure", help="unzipped function + layer sizes vs Lambda's limit")
    p.add_argument("layer_zips", type=Path, nargs="+")
    p.add_argument("--serverless-dir", type=Path, default=Path(".serverless"))
    args = parser.parse_args(argv)

    if args.cmd == "check-pins":
        problems = check_pins(args.requirements, args.site)
        for problem in problems:
            print(f"{args.requirements}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if args.cmd == "prune-tests":
        folders, removed = prune_tests(args.site)
        print(f"  removed {folders} tests folders, {mib(removed)}")
        return 0
    if args.cmd == "zip":
        count = reproducible_zip(args.src, args.out)
        print(f"  {args.out}: {count} files")
        return 0
    lines = report(args.layer_zips, args.serverless_dir)
    print("\n".join(lines))
    return 1 if any("OVER LIMIT" in line for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
