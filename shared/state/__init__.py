"""State that publishers keep in Redis, shared by the publisher processes and the gateway API.

Publishers (``publisher/``) write it; the gateway's HTTP API (``gateway/api.py``) reads it
and, for tasks and alerts, changes it the same way. Keys, with the default prefix ``rc``:

- ``rc:metrics:hosts``         hash: host name -> newest metrics snapshot (JSON)
- ``rc:metrics:demand``        string with a TTL: set while an alerts process needs metrics
- ``rc:metrics:fleet``         string with a TTL: which metrics process publishes the fleet
- ``rc:metrics:sources``       sorted set: every metrics source (host or service) by last sample
- ``rc:metrics:series:<src>``  hash: series (``metric`` or ``metric|entity``) -> newest value
- ``rc:hist:<tier>:<src>|<series>`` sorted set: one tier of a series' history (history.py)
- ``rc:{tasks.<p>}:task:<id>`` hash: ``v`` version, ``s`` task state (JSON), ``x`` its index
  entry; removed ``task_ttl`` after its last change (with its log and index entries)
- ``rc:{tasks.<p>}:log:<id>``  stream: the task's kept log
- ``rc:tasks:ix:...``          task indexes and statistics (:mod:`shared.state.task_scripts`)
- ``rc:alerts:active``         hash: alert fingerprint (``rule@host``) -> active alert (JSON)
- ``rc:alerts:order``          sorted set: fingerprints of active alerts by raise time
- ``rc:alerts:recent``         list: the newest resolved alerts (JSON), newest first
- ``rc:alerts:silence:<fp>``   string with a TTL: resolved by hand; not raised again until
  the condition clears
- ``rc:alerts:silence-rule:<rule>`` string with a TTL: the rule is silenced

Every change of task or alert state and the events announcing it happen in one Lua script
(:mod:`shared.broker.redis_atomic`), so a subscriber never sees one without the other.
"""
