"""The long-running worker: request messages in, export runs, completion events out.

- ``worker``: ``segment-export run``, deliveries to runs (validation, leases, continuations, retries,
  settlement); ``heartbeat``: an SQS delivery's visibility heartbeat (bounded calls, backoff, watchdog);
- ``health``: ``/metrics``, ``/healthz``, ``/readyz``; ``metrics``: the Prometheus side, fed by hooks;
- ``publishing``: one confirmed publish for the command line (``publish``, ``request``);
- ``triggers``: an object a notification announced -> the segment refresh it means (``[segments.ID] triggers``);
- ``ingress``: ``segment-export ingress``, webhooks in, confirmed publishes to the requests queue out;
  ``tokens``: its bearer tokens.

May import: ``worker.run``, ``worker.broker``, ``worker.activecampaign``, ``worker.contacts``,
``worker.syncstate``, ``worker.snapshot``, ``worker.locations``, ``worker.state``, ``worker.leases``,
``worker.settings``, ``worker.events``, ``worker.privacy``, ``worker.clients``. Never the command line or the
simulator; only ``metrics`` and ``health`` import ``prometheus_client``.
"""
