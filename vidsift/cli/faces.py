"""``vidsift faces``: the collection of known people that analyze_faces matches faces against.

    vidsift faces index --name "Ada Lovelace" ada1.jpg ada2.jpg   # one face per photo: the largest
    vidsift faces list                                           # names and how many faces each
    vidsift faces remove "Ada Lovelace"

The commands talk to whatever Rekognition the environment points at: Amazon's (your AWS
credentials and region) or ``vidsift up``'s local stack (export what it prints). The
collection is the stack's, ``vidsift-<stage>-known-faces`` (``--stage``, default ``local``;
or ``--collection NAME`` / env ``FACE_COLLECTION``). Names are stored as the faces'
ExternalImageId, encoded reversibly (vidsift.core.matching.encode_name).

Index several photos per person (different days, light, angles): a face matches a person if
it is close enough to any one of their photos, and the local face model in particular is far
more reliable with several (see the README).

Kept out of vidsift/cli/commands.py so the feature owns its command: cli.py registers it with
``add_parser(sub)``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from vidsift import aws, contract
from vidsift.core import matching

#: Rekognition takes image bytes up to 5 MB, JPEG or PNG.
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def collection_id(args: argparse.Namespace) -> str:
    """The collection to act on: ``--collection``, else $FACE_COLLECTION, else the stage's name from
    the contract (the one the deployed functions search)."""
    if args.collection:
        return str(args.collection)
    if os.environ.get("FACE_COLLECTION"):
        return os.environ["FACE_COLLECTION"]
    return matching.collection_name(contract.ResourceNames(stage=args.stage, account="-"))


def _fail(message: str) -> int:
    print(f"vidsift faces: {message}", file=sys.stderr)
    return 2


def _missing_collection(collection: str) -> int:
    return _fail(f"collection {collection} does not exist here: deploy the stack (or start `vidsift up`) first, "
                 "or give --collection / --stage")


def cmd_index(args: argparse.Namespace) -> int:
    """``vidsift faces index``: add a person's photos to the known-faces collection under their name,
    which alerts and the faces rows then show."""
    collection = collection_id(args)
    try:
        external = matching.encode_name(args.name)
    except ValueError as exc:
        return _fail(str(exc))
    failed = 0
    for path in map(Path, args.images):
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failed += 1
            continue
        if len(data) > MAX_IMAGE_BYTES:
            print(f"{path}: {len(data)} bytes, Rekognition takes at most 5 MB: resize it", file=sys.stderr)
            failed += 1
            continue
        try:
            resp = aws.index_faces(collection, data, external)
        except Exception as exc:
            code = aws.error_code(exc)
            if code == "ResourceNotFoundException":
                return _missing_collection(collection)
            if code in ("InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"):
                print(f"{path}: refused ({code}: {exc})", file=sys.stderr)
                failed += 1
                continue
            raise
        records = resp.get("FaceRecords", [])
        others = sum("EXCEEDS_MAX_FACES" in u.get("Reasons", []) for u in resp.get("UnindexedFaces", []))
        if not records:
            reasons = sorted({r for u in resp.get("UnindexedFaces", []) for r in u.get("Reasons", [])})
            print(f"{path}: no usable face{' (' + ', '.join(reasons) + ')' if reasons else ''}", file=sys.stderr)
            failed += 1
            continue
        face = records[0]["Face"]
        note = f"; {others} other face(s) in the photo ignored, the largest was indexed" if others else ""
        print(f"{path}: indexed as {args.name} (face {face['FaceId']}, confidence {face['Confidence']:.1f}){note}")
    print(f"{len(args.images) - failed} of {len(args.images)} photo(s) indexed for {args.name} in {collection}")
    return 1 if failed else 0


def _faces(collection: str) -> list[dict] | None:
    try:
        return aws.list_faces(collection)
    except Exception as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def cmd_list(args: argparse.Namespace) -> int:
    """``vidsift faces list``: who is in the collection and with how many faces."""
    collection = collection_id(args)
    faces = _faces(collection)
    if faces is None:
        return _missing_collection(collection)
    counts = Counter(matching.decode_name(f["ExternalImageId"]) if f.get("ExternalImageId") else "(no name)"
                     for f in faces)
    if args.format == "json":
        print(json.dumps({"collection": collection, "people": [{"name": n, "faces": c}
                                                               for n, c in sorted(counts.items())]}, indent=1))
        return 0
    if not counts:
        print(f"{collection}: no known faces yet (add some with: vidsift faces index --name NAME PHOTO...)")
        return 0
    width = max(len(n) for n in counts)
    print(f"{collection}: {len(counts)} people, {len(faces)} faces")
    for name, count in sorted(counts.items()):
        print(f"  {name:<{width}}  {count} face{'s' if count != 1 else ''}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """``vidsift faces remove``: delete every face indexed under a name, so that person is no
    longer recognised."""
    collection = collection_id(args)
    faces = _faces(collection)
    if faces is None:
        return _missing_collection(collection)
    external = matching.encode_name(args.name)
    ids = [f["FaceId"] for f in faces if f.get("ExternalImageId") == external]
    if not ids:
        return _fail(f"nobody named {args.name!r} in {collection} (see: vidsift faces list)")
    deleted = aws.delete_faces(collection, ids)
    print(f"removed {args.name}: {len(deleted)} face(s) deleted from {collection}")
    return 0 if len(deleted) == len(ids) else 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``faces`` (index, list, remove) on the ``vidsift`` command's subparsers."""
    p = sub.add_parser("faces", help="manage the known faces that analyze_faces matches (index, list, remove)")
    p.add_argument("--collection", help="Rekognition collection id (default: env FACE_COLLECTION, else the "
                                        "stack's vidsift-<stage>-known-faces)")
    p.add_argument("--stage", default="local", help="stack stage whose collection to use (default: local)")
    faces = p.add_subparsers(dest="faces_command", required=True)

    q = faces.add_parser("index", help="add photos of one person (the largest face of each photo)")
    q.add_argument("--name", required=True, help="the person's name, as alerts and the faces table will show it")
    q.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG photos, at most 5 MB each")
    q.set_defaults(func=cmd_index)

    q = faces.add_parser("list", help="the known people and how many faces each")
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(func=cmd_list)

    q = faces.add_parser("remove", help="forget a person (every face indexed under that name)")
    q.add_argument("name")
    q.set_defaults(func=cmd_remove)
