"""What the DynamoDB stores share: plain values to and from attribute values, resending what
a batch call leaves unprocessed, and a write conditional on a version number.

Kept apart from :mod:`vidsift.aws` (which knows clients, not items) and from each store
(which knows its own item layout): these helpers know DynamoDB's wire shapes and nothing
of any table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from vidsift import aws

#: BatchWriteItem takes 25 items, BatchGetItem 100 keys, per call.
WRITE_BATCH = 25
GET_BATCH = 100


def value(plain: Any) -> dict[str, Any]:
    """A plain value as a DynamoDB attribute value: the few kinds the stores write (booleans,
    numbers, sets of numbers, strings)."""
    if isinstance(plain, bool):
        return {"BOOL": plain}
    if isinstance(plain, int | float):
        return {"N": str(plain)}
    if isinstance(plain, set | frozenset):
        return {"NS": [str(v) for v in sorted(plain)]}
    return {"S": str(plain)}


def plain(attr: dict[str, Any]) -> Any:
    """An attribute value as plain Python (whole numbers as ints, number sets as sets of ints)."""
    (kind, raw), = attr.items()
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() else number
    if kind == "NS":
        return {int(float(v)) for v in raw}
    if kind == "BOOL":
        return bool(raw)
    return raw


def until_processed(send: Callable[[Any], dict[str, Any]], pending: Any, left: Callable[[dict[str, Any]], Any],
                    what: str, attempts: int) -> None:
    """Call ``send(pending)`` until ``left(answer)`` (what DynamoDB left unprocessed, e.g. on a
    throttled partition) is empty, resending exactly that with backoff; raise past ``attempts``.
    A batch call succeeds even when it did only part of the work, so this is not botocore's
    retry and has to be done by the caller."""
    for attempt in range(attempts):
        pending = left(send(pending))
        if not pending:
            return
        if attempt == attempts - 1:
            raise RuntimeError(f"DynamoDB: {what} still unprocessed after {attempts} attempts")
        time.sleep(aws.backoff(attempt))


def put_if_version(table: str, item: dict[str, Any], expected_version: int) -> bool:
    """PutItem only if the item's ``version`` is still ``expected_version`` (0: no item yet,
    keyed on ``pk``); False when another writer got in between. Optimistic concurrency for the
    stores read-modified-written by concurrent invocations (the alert state, the visitors'
    registry): the loser reads again and re-decides instead of overwriting."""
    if expected_version == 0:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        condition = {"ConditionExpression": "version = :v",
                     "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
    try:
        aws.client("dynamodb").put_item(TableName=table, Item=item, **condition)
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
