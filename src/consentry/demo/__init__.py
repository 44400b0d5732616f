"""The demo (``consentry demo``): invented customers, the sign-in and shop pages, the partners'
receiver and tags, and simulated services that use the SDK.

Depends on the rest of consentry (bootstrap, services, web); nothing outside the demo and the
command line imports it, except the app composition that mounts its pages.
"""
