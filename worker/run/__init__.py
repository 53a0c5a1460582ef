"""One export run and its steps: plan -> send -> confirm -> commit, resumable at every step.

- ``types``: what a run is and how it ends (``RunSpec``, ``RunResult``, ``Progress``, ``RunError``, codes);
- ``engine``: the run itself and its protocol (crashes, lost answers, competing runs); ``runbook``: its
  records in the state store; ``plans``: what a plan was made against, and which plans are open;
  ``settle``: folding other open plans into the synced state before a new plan; ``fence``: the lease as a
  guard on every POST and record; ``pipeline``: the planner thread's hand-off to the sender; ``checks``
  and ``guard``: what may refuse a run before any request; ``commit``: the new synced state; ``report``:
  the failure report; ``retention``: pruning old records;
- ``hooks``: what a run and the worker announce (metrics and logs subscribe);
- run modes the command line and the worker ask for: ``dryrun`` (what would change), ``preview`` (the
  dry run for people), ``direct`` (a run started by hand, ``sync``).

May import: ``worker.activecampaign``, ``worker.contacts``, ``worker.syncstate``, ``worker.snapshot``,
``worker.state``, ``worker.leases``, ``worker.settings``, ``worker.events``, ``worker.privacy``,
``worker.clients``. Never a broker, the service, the command line, the simulator or Prometheus: the run
is the same whether a queue or a person started it.
"""
