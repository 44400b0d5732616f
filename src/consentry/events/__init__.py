"""Propagation: the outbox relay, its publishers (HTTP feed, NATS JetStream), the JetStream
follower helper and signed webhooks to third parties. See docs/scaling.md."""
