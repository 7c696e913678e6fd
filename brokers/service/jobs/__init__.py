"""Workspace jobs: the database is the record of every job, an existing task queue (Huey) carries their ids.

- :mod:`.queue`: the Huey instance (SQLite file in the data folder, or Redis) and the in-process consumer;
- :mod:`.ledger`: a job's way through its statuses (claim with a lease, renew, end, retry when a lease expires);
- :mod:`.context`: what a running job reports through (progress, logs, the safe points where it stops);
- :mod:`.kinds`: what each kind does (usage scan, delete data, clone data, cleanup, verify);
- :mod:`.runner`: runs one job for the queue; :mod:`.maintenance`: what keeps the record and the queue in step
  (expired leases, lost messages, schedules, the periodic usage scans); :mod:`.mail`: notification e-mails;
- :mod:`.system`: the one object the service and ``brokers worker`` hold.
"""
