"""Tests of the SDK, the change feed and the decision replicas."""
