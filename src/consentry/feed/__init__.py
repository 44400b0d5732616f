"""The server side of replication: the change feed that replicas follow (``reader``), the
replica inside the server process (``server``) and the cache of verified service keys its
endpoints use (``keycache``). Their SQL is in ``storage/replication.py``; the replica itself
(``replica/``) is the client side's, shared with the SDK."""
