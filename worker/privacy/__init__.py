"""What may leave the process: keys never, emails masked.

- ``secret``: ``Secret``, the only holder of an API key (never printed, never in an exception);
- ``masking``: ``alice@example.com`` -> ``a***@example.com`` for logs and previews; ``scheme://user:pass@`` -> ``scheme://***@``;
- ``logs``: the logging setup (one JSON object per line), masking emails in every record.

May import: nothing of ``worker``; every other part may import this.
"""
