"""The server side of replication: the change feed that replicas follow (``reader``) and the
replica inside the server process (``server``). Their SQL is in ``storage/replication.py``; the
replica itself (``replica/``) is the client side's, shared with the SDK."""
