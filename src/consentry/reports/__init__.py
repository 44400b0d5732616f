"""Human-readable evidence packs for regulators."""
