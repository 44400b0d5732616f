"""Decision replicas: the catalogue compiled to integers and every subject's state in memory.

The client side, shared with the SDK: nothing here imports a server package (the server's own
replica and the change feed it serves are in ``feed/``). ``jetstream`` is what the relay's NATS
publisher and the followers agree on.
"""
