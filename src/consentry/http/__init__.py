"""What the HTTP entrypoints share, and their composition into one ASGI app.

``api/`` (the JSON API), ``web/`` (the Permissions page) and ``storefront/`` (the storefront
script's routes) are siblings: none imports another. They share from here the credentials
(bearer parsing, service keys and their cache), the container dependency, body limits,
problem rendering, rate limits, security headers, metrics, the Global Privacy Control header and
the fast paths' base. ``http/app.py`` composes them.
"""
