"""consentry: an open permissions center for e-commerce."""

__version__ = "0.1.0"
