"""vidsift's stores: each DynamoDB table behind a small class whose methods are what the
stages call, so the item layout of a table lives in one module and nowhere else.

The shape follows Powertools' idempotency persistence layer: an interface the stages depend
on (a ``Protocol``) and a DynamoDB implementation constructed with the table's name. There is
no second, in-memory implementation for the local stack: it runs the same DynamoDB code
against moto, so what a laptop run exercises is what Lambda runs.

- :mod:`vidsift.storage.progress`: the tracking table (frames' detections, segments' and
  videos' progress, the open-video index the sweeper queries);
- :mod:`vidsift.storage.alert_state`: the alert rules' debounce state;
- :mod:`vidsift.storage.visitors`: the visitors' registry;
- :mod:`vidsift.storage.dynamo`: what they share (attribute values, batch retries,
  version-conditional writes).

The clients themselves (endpoints, retries) stay in :mod:`vidsift.aws`.
"""
