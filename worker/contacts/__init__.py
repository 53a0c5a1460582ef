"""Profiles -> contacts -> changes -> batches: what a run sends, computed without sending.

- ``mapping``: a profile to an ActiveCampaign contact (email rule, names, phone, tags, custom fields);
- ``fields``: custom fields resolved by tag or title, values converted to what each field takes;
- ``synced``: the export's committed state, as the plan diffs against it;
- ``plan``: read -> map -> validate -> dedupe -> diff -> batch, one snapshot page at a time;
- ``samples``: deterministic sample segments (demo, tests, benchmarks).

May import: ``worker.settings``, ``worker.snapshot``, ``worker.syncstate``, ``worker.state``,
``worker.privacy``. Nothing that talks to ActiveCampaign or a broker: a plan is pure computation.
"""
