"""The process's clients of outside stores, made once and shared: S3 (``s3``), Azure Blob Storage (``azure``,
the optional extra ``segment-export[azure]``) and Redis (``redis``).

Why a package of their own: the snapshot readers and the state store share one S3 client; the shared
rate limiter and the export leases share Redis connections; none of them should import the other to
get it.

May import: nothing of ``worker``.
"""
