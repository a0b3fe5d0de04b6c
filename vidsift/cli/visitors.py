"""``vidsift visitors``: the people recognised across visits (opt-in: ``vidsift run --visitors``).

    vidsift visitors list                    # each visitor: visits, first/last seen, cameras, thumbnail
    vidsift visitors name v000003 "Ada"      # a name, joined at query time (no reprocessing)
    vidsift visitors forget v000003          # erase on request (GDPR Art. 17), with an audit record
    vidsift visitors expire                  # delete visitors unseen for --retention-days (30)
    vidsift visitors promote v000003 --name "Ada"   # index their face copy in the known faces (watch list)
    vidsift visitors --stage dev list        # the deployed stack's visitors (your AWS credentials)
    vidsift visitors --stage dev policy      # the IAM policy those commands need, nothing more

Locally the commands read and change a run's output folder (``--out``, default ``vidsift-out``);
with ``--stage`` they work on the deployed stack through the AWS APIs
(vidsift.stages.visitor_admin). Bad input (an unknown id, an empty name) is one error line and
exit code 2, and nothing is changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidsift import contract
from vidsift.stages import visitor_admin
from vidsift.stages.visitor_admin import VisitorError


def _store(args: argparse.Namespace) -> visitor_admin.Store:
    if args.stage:
        from vidsift import aws
        from vidsift.stages import visitors

        names = contract.ResourceNames(stage=args.stage, account=args.account or aws.account_id())
        return visitor_admin.CloudStore(visitors.table_name(names), visitors.collection_name(names),
                                        names.bucket("analytics"))
    from vidsift.local.visitors import LocalStore, registry_file

    out = Path(args.out)
    if not registry_file(out).exists():
        raise VisitorError(f"no visitors in {out}/ (run with: vidsift run --visitors --out {out} VIDEO...)")
    return LocalStore(out)


def cmd_list(args: argparse.Namespace) -> int:
    """``vidsift visitors list``: every visitor with their name, status and visits."""
    rows = visitor_admin.list_visitors(_store(args))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no visitors yet")
        return 0
    print(f"{'visitor':<9} {'name':<20} {'status':<9} {'visits':>6} {'first seen':<24} {'last seen':<24} "
          f"{'cameras':<16} thumbnail")
    for r in rows:
        mark = "*" if r["returning"] else " "
        print(f"{r['visitor_id']:<9} {(r['name'] or '')[:20]:<20} {r['status']:<9} {r['visits']:>5}{mark} "
              f"{r['first_seen'] or '':<24} {r['last_seen'] or '':<24} {','.join(r['cameras'])[:16]:<16} "
              f"{r['thumbnail'] or ''}")
    print("(* returning: more than one visit)")
    return 0


def cmd_name(args: argparse.Namespace) -> int:
    """``vidsift visitors name``: name a visitor; rows are joined with the names at query time, so
    past rows show the name too."""
    row = visitor_admin.name(_store(args), args.visitor_id, args.name)
    print(f"{row['visitor_id']} is now named {row['name']!r} (past and future rows show it through visitor_names)")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """``vidsift visitors forget``: erase a person (face vectors, copies, rows) and say what could
    not be erased, for a data-subject request."""
    record = visitor_admin.forget(_store(args), args.visitor_id, reason=args.reason)
    rows = record["rows_deleted"]
    print(f"forgot {record['visitor_id']}: {record['face_vectors_deleted']} face vector(s), "
          f"{record['face_copies_deleted']} face copy(ies), {rows['tracks']} tracks row(s) and {rows['faces']} faces "
          f"row(s) in {record['objects_rewritten']} object(s); audit record {record['audit_record']}")
    print("not erased: " + "; ".join(record["not_erased"]))
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    """``vidsift visitors expire``: delete visitors unseen for the retention period, as the deployed
    expire_visitors does every day."""
    done = visitor_admin.expire(_store(args), args.retention_days)
    print(f"{len(done)} visitor(s) unseen for {args.retention_days:g} days deleted from the collection"
          + (f": {', '.join(done)}" if done else ""))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """The visitor's face copy indexed in the known-faces collection under a name: only on this
    explicit command does a visitor join the watch list. Like ``vidsift faces``, it talks to the
    Rekognition the environment points at (Amazon's, or a running ``vidsift up``)."""
    from vidsift import aws
    from vidsift.core import matching

    try:
        external = matching.encode_name(args.name)
    except ValueError as exc:
        raise VisitorError(str(exc)) from exc
    image = visitor_admin.thumbnail_bytes(_store(args), args.visitor_id)
    names = contract.ResourceNames(stage=args.stage or contract.LOCAL_STAGE, account="-")
    collection = matching.collection_name(names)
    resp = aws.index_faces(collection, image, external)
    if not resp.get("FaceRecords"):
        raise VisitorError(f"Rekognition found no usable face in {args.visitor_id}'s copy")
    print(f"{args.visitor_id} added to the known faces ({collection}) as {args.name}")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    """The least-privilege IAM policy for the commands against a deployed stack."""
    if not args.stage:
        raise VisitorError("policy is for a deployed stack: give --stage")
    names = contract.ResourceNames(stage=args.stage, account=args.account or "<account>")
    print(json.dumps(admin_policy(names), indent=1))
    return 0


def admin_policy(names: contract.ResourceNames, region: str = "*") -> dict[str, Any]:
    """The least-privilege IAM policy the visitors commands need on a deployed stage, printed for an
    administrator to attach (``vidsift visitors policy``): the commands run with a person's
    credentials, not a function's role."""
    from vidsift.core import matching
    from vidsift.stages import visitors

    v = contract.load()["visitors"]
    acct = names.account
    bucket = f"arn:aws:s3:::{names.bucket('analytics')}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Registry", "Effect": "Allow",
         "Action": ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
         "Resource": f"arn:aws:dynamodb:{region}:{acct}:table/{visitors.table_name(names)}"},
        {"Sid": "VisitorFaces", "Effect": "Allow", "Action": ["rekognition:ListFaces", "rekognition:DeleteFaces"],
         "Resource": f"arn:aws:rekognition:{region}:{acct}:collection/{visitors.collection_name(names)}"},
        {"Sid": "Promote", "Effect": "Allow", "Action": ["rekognition:IndexFaces"],
         "Resource": f"arn:aws:rekognition:{region}:{acct}:collection/{matching.collection_name(names)}"},
        {"Sid": "Rows", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": [f"{bucket}/tracks/*", f"{bucket}/faces/*"]},
        {"Sid": "FaceCopies", "Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"],
         "Resource": f"{bucket}/{v['faces_prefix']}*"},
        {"Sid": "Audit", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"{bucket}/{v['audit_prefix']}*"},
        {"Sid": "Names", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": f"{bucket}/{v['names_key']}"},
        {"Sid": "List", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket},
        {"Sid": "Account", "Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": "*"},
    ]}


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except VisitorError as exc:
            print(f"vidsift visitors: {exc}", file=sys.stderr)
            return 2
    return wrapped


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``visitors`` (list, name, forget, expire, promote, policy) on ``vidsift``."""
    p = sub.add_parser("visitors", help="people recognised across visits (opt-in): list, name, forget, expire")
    p.add_argument("--out", default="vidsift-out", help="a local run's results folder (default vidsift-out)")
    p.add_argument("--stage", help="work on this deployed stack's visitors instead (AWS credentials)")
    p.add_argument("--account", help="with --stage: the AWS account (default: the caller's)")
    cmds = p.add_subparsers(dest="visitors_command", required=True)

    q = cmds.add_parser("list", help="each visitor: visits, first and last seen, cameras, thumbnail")
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(func=_run(cmd_list))

    q = cmds.add_parser("name", help="record a visitor's name (shown in past and future rows)")
    q.add_argument("visitor_id")
    q.add_argument("name")
    q.set_defaults(func=_run(cmd_name))

    q = cmds.add_parser("forget", help="erase a visitor on request (faces, copies, rows) with an audit record")
    q.add_argument("visitor_id")
    q.add_argument("--reason", default="request", help="recorded in the audit record (default: request)")
    q.set_defaults(func=_run(cmd_forget))

    q = cmds.add_parser("expire", help="delete visitors not seen for --retention-days from the collection")
    q.add_argument("--retention-days", type=float, default=30.0)
    q.set_defaults(func=_run(cmd_expire))

    q = cmds.add_parser("promote", help="add a visitor's face to the known faces (the watch list) under a name")
    q.add_argument("visitor_id")
    q.add_argument("--name", required=True)
    q.set_defaults(func=_run(cmd_promote))

    q = cmds.add_parser("policy", help="print the IAM policy the commands need against --stage")
    q.set_defaults(func=_run(cmd_policy))
