"""The storefront runtime: ``/consentry.js`` for a shop's pages, its endpoints (device subjects,
the first-visit choice, the merge on sign-in) and the rules behind them (``docs/storefront.md``).
"""
