"""The demo shop (``consentry demo``): a product list, a product page with an embedded video and
a checkout link, whose analytics, ad and partner tags come from the demo partners' port and are
gated by ``/consentry.js`` as a real shop's would be. Only with ``settings.demo``.

``/demo/broken-shop/`` is the same shop with two mistakes a real site makes: one ad tag loaded
without ``data-consent`` and a partner cookie set before any choice. ``consentry verify-site``
must catch both (try it).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from consentry.http.problems import problem_response

router = APIRouter(include_in_schema=False)
LOCALES = ("en", "fr", "nl", "de")


@dataclass(frozen=True, slots=True)
class Product:
    slug: str
    name: str
    price: str
    text: str


PRODUCTS = (
    Product("kettle", "Stoneware kettle", "€39.00", "A 1.2 litre kettle with a matte glaze."),
    Product("lamp", "Oak desk lamp", "€64.00", "A small lamp of oiled oak with a linen shade."),
    Product("backpack", "Canvas backpack", "€79.00", "Waxed canvas, leather straps, 20 litres."),
)

CSS = """
body { margin: 0; font: 1rem/1.5 system-ui, sans-serif; color: #1b1b1b; background: #fafafa; }
header, main, footer { max-width: 52rem; margin: 0 auto; padding: 1rem 1.5rem; }
header { display: flex; justify-content: space-between; align-items: center; }
header a, footer a, main a { color: #0b4f9c; }
.products { list-style: none; padding: 0; display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); }
.products li { background: #fff; border: 1px solid #ccc; border-radius: .5rem; padding: 1rem; }
iframe { border: 0; width: 100%; max-width: 40rem; aspect-ratio: 16 / 9; }
#ad-slot { min-height: 1rem; }
"""


def _partners(request: Request) -> int | None:
    url = request.app.state.container.settings.demo_partners_url
    return urlsplit(url).port if url else None


def _tag(port: int, recipient: str) -> str:
    return f"http://{recipient}.localhost:{port}/tag.js"


def _page(
    request: Request, title: str, body: str, *, broken: bool = False, lang: str = "en"
) -> Response:
    port = _partners(request)
    if port is None:
        return problem_response(503, "the demo partners' port is not known (run consentry demo)")
    tags = [
        ("analytics.product", _tag(port, "mesurine")),
        ("sharing.ad_partners", _tag(port, "adlytics")),
        ("sharing.ad_partners", _tag(port, "bannerfield")),
    ]
    lines = ['<script src="/consentry.js"></script>']
    for permission, src in tags:
        if broken and "adlytics" in src:
            lines.append(f'<script src="{src}"></script>')  # mistake 1: not gated
        else:
            lines.append(
                f'<script type="text/plain" data-consent="{permission}" data-src="{src}"></script>'
            )
    base = "/demo/broken-shop" if broken else "/demo/shop"
    page = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Example Marketplace (demo shop)</title>
{chr(10).join(lines)}
<link rel="stylesheet" href="/demo/shop/shop.css">
</head><body>
<header><a href="{base}/?lang={lang}">Example Marketplace</a>
<a href="{base}/checkout?lang={lang}">Checkout</a></header>
<main>{body}<div id="ad-slot"></div></main>
<footer><p><a href="#" data-consentry-open>Privacy choices</a> ·
<a href="/permissions">Your permissions</a> · A demo shop: nothing is sold.</p></footer>
</body></html>"""
    partners = f"http://*.localhost:{port}"
    response = HTMLResponse(page)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {partners}; connect-src 'self' {partners}; "
        f"img-src 'self' data: {partners}; frame-src {partners}; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    response.headers["Cache-Control"] = "no-store"
    if broken:  # mistake 2: a partner cookie before any choice
        response.set_cookie("_bnf_id", "set-before-choice", max_age=31536000, samesite="lax")
    return response


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "en")
    return lang if lang in LOCALES else "en"


def _demo(request: Request) -> bool:
    return bool(request.app.state.container.settings.demo)


def _list(request: Request, broken: bool) -> Response:
    if not _demo(request):
        return problem_response(404, "not found")
    base = "/demo/broken-shop" if broken else "/demo/shop"
    lang = _lang(request)
    items = "".join(
        f'<li><h2><a href="{base}/product/{p.slug}?lang={lang}">{html.escape(p.name)}</a></h2>'
        f"<p>{html.escape(p.text)}</p><p>{p.price}</p></li>"
        for p in PRODUCTS
    )
    body = f'<h1>Products</h1><ul class="products">{items}</ul>'
    return _page(request, "Products", body, broken=broken, lang=lang)


def _product(request: Request, slug: str, broken: bool) -> Response:
    product = next((p for p in PRODUCTS if p.slug == slug), None)
    if not _demo(request) or product is None:
        return problem_response(404, "not found")
    port = _partners(request) or 0
    lang = _lang(request)
    video = f"http://bannerfield.localhost:{port}/video?product={product.slug}"
    body = (
        f"<h1>{html.escape(product.name)}</h1><p>{html.escape(product.text)}</p>"
        f"<p>{product.price}</p>"
        f'<iframe data-consent="sharing.ad_partners" data-src="{video}" '
        f'title="Video of the {html.escape(product.name.lower())}"></iframe>'
        f'<p><a href="{"/demo/broken-shop" if broken else "/demo/shop"}/checkout?lang={lang}">'
        "Buy: go to checkout</a></p>"
    )
    return _page(request, product.name, body, broken=broken, lang=lang)


def _checkout(request: Request, broken: bool) -> Response:
    if not _demo(request):
        return problem_response(404, "not found")
    body = (
        "<h1>Checkout</h1><p>Sign in to order. The choices you made on this browser are "
        'carried over to your account.</p><p><a href="/demo/login">Sign in</a></p>'
    )
    return _page(request, "Checkout", body, broken=broken, lang=_lang(request))


@router.get("/demo/shop/shop.css")
def shop_css() -> Response:
    return Response(CSS, media_type="text/css; charset=utf-8")


def _shop_routes(prefix: str, *, broken: bool) -> None:
    """The shop's pages under ``prefix``: the list, a product, the checkout."""

    def listing(request: Request) -> Response:
        return _list(request, broken=broken)

    def product(request: Request, slug: str) -> Response:
        return _product(request, slug, broken=broken)

    def checkout(request: Request) -> Response:
        return _checkout(request, broken=broken)

    tag = "broken_" if broken else ""  # the routes' names
    router.get(f"{prefix}/", name=f"{tag}shop")(listing)
    router.get(prefix, name=f"{tag}shop")(listing)
    router.get(f"{prefix}/product/{{slug}}", name=f"{tag}product")(product)
    router.get(f"{prefix}/checkout", name=f"{tag}checkout")(checkout)


_shop_routes("/demo/shop", broken=False)
_shop_routes("/demo/broken-shop", broken=True)
