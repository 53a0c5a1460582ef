"""Events: the JSON on the wire between upstream, the workers and downstream.

- ``envelopes``: building and reading our events (``segment.refreshed``, ``export.requested``,
  ``export.completed``/``failed``);
- ``schemas``: validation against the JSON Schemas of ``schemas/`` (shipped as ``worker.schemas``);
- ``instants``: RFC 3339 time stamps parsed, so order is decided on instants, never on text;
- ``notifications``: S3 event notifications (direct, SNS-enveloped, EventBridge) read into objects;
- ``cloudevents``: CloudEvents 1.0 (structured, binary) and Event Grid, of our types or BlobCreated;
- ``incoming``: the one reader of a requests-queue message (the worker's and the ingress's).

May import: nothing of ``worker``; every other part may import this.
"""
