"""ActiveCampaign: a paced, retrying async client and the bulk-import pipeline built on it.

Modules: `pacing` (slot arithmetic), `limiter` (the account's budget), `retry` (how long to wait),
`responses` (AC's answers parsed), `errors`, `client` (HTTP), `polling` (when to poll import/info),
`importer` (send and confirm the batches of one run).

May import: ``worker.privacy``, ``worker.clients``, ``worker.events``; nothing of runs, brokers or state
(the client serves any caller that has a key and a list).
"""

from worker.activecampaign.client import ActiveCampaignClient, BulkAccepted, ImportInfo
from worker.activecampaign.errors import ActiveCampaignError
from worker.activecampaign.importer import SKIPPED_UNSUBSCRIBED, Batch, BatchOutcome, BulkImporter
from worker.activecampaign.limiter import AccountLimiter, RateLimiter

__all__ = [
    "SKIPPED_UNSUBSCRIBED",
    "AccountLimiter",
    "ActiveCampaignClient",
    "ActiveCampaignError",
    "Batch",
    "BatchOutcome",
    "BulkAccepted",
    "BulkImporter",
    "ImportInfo",
    "RateLimiter",
]
