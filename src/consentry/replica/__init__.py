"""Decision replicas: the catalogue compiled to integers and every subject's state in memory.

``core`` and ``table`` are pure (no I/O, no server dependencies): the SDK uses them. ``feed``
(reading the outbox and snapshots from the database) and ``server`` (the replica inside the
HTTP server) need the ``[server]`` extra.
"""
