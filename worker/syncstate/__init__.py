"""The synced state's compact form: hashed keys in memory, sharded generations in the store.

- ``keys``: the 128-bit email key, its collision bound, and lookups in sorted key columns;
- ``index``: the stored entries' key columns a run plans against, and the dedupe set of new keys;
- ``shard``: a key range of entries as one stored object (columns, then compressed emails);
- ``manifest``: the small object that names the current generation's shards (swapped on commit);
- ``source``: reading entries back (from the store, or memory for v1 states and tests);
- ``merge``: the commit's streaming merge of a run's changes into a new generation.

``worker.contacts.synced.SyncedState`` is the face the rest of the worker uses.

May import: ``worker.state``.
"""
