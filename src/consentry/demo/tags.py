"""The demo partners' web tags: what the demo shop's analytics, ad and partner scripts are.

The demo partners' receiver (``demo/partners.py``) serves them on its port, for any host name;
the shop loads them from ``http://<recipient>.localhost:<port>`` (Chromium resolves every
``*.localhost`` to this machine), so each third party has its own origin, as on a real shop,
and the catalogue's ``domains:`` trace each request to it. Each tag behaves as such tags do:
it stores an identifier (a cookie the catalogue declares), reports the page view, and the ad
tags read the visitor's TCF signal first. Each notes that it ran, with what Consent Mode said,
in ``window.demoTags`` (the shop's tests read it).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

# recipient -> the cookie and storage key it sets (declared in the demo catalogue's cookies:)
_TAGS = {
    "mesurine": ("_msr_id", "msr_session", None),
    "adlytics": ("_adl_uid", None, 3101),
    "bannerfield": ("_bnf_id", "bnf_seen", 3102),
}
TAG_PATH = "/tag.js"
VIDEO_PATH = "/video"
PIXEL_PATHS = frozenset({"/collect", "/pixel", "/ad.svg"})

_COMMON = """
window.demoTags = window.demoTags || [];
function note(what) {
  window.demoTags.push({tag: NAME, what: what,
    consent: (window.dataLayer || []).map(function (a) { return Array.prototype.slice.call(a); })});
}
function store() {
  document.cookie = COOKIE + "=" + Math.random().toString(36).slice(2) +
    "; path=/; max-age=31536000; SameSite=Lax";
  if (KEY) localStorage.setItem(KEY, String(Date.now()));
}
function beacon(path, extra) {
  var page = encodeURIComponent(location.pathname);
  new Image().src = ORIGIN + path + "?page=" + page + (extra || "");
}
"""

_ANALYTICS = """
note("ran");
store();
beacon("/collect");
"""

# Ad tags act only on a TC string with consent for their vendor id and purpose 1 (store on a
# device), and stop when a later signal withdraws it: what IAB vendors do.
_AD = """
var active = false;
note("ran");
window.__tcfapi("addEventListener", 2, function (tc, ok) {
  var yes = ok && tc.vendor.consents[VENDOR] && tc.purpose.consents[1];
  if (yes && !active) {
    active = true;
    store();
    beacon("/pixel", "&gdpr_consent=" + encodeURIComponent(tc.tcString));
    var slot = document.getElementById("ad-slot");
    if (slot && NAME === "bannerfield") {
      var img = new Image();
      img.alt = "Advertisement";
      img.src = ORIGIN + "/ad.svg";
      slot.appendChild(img);
    }
  }
  if (!yes) active = false;
});
"""

_AD_IMAGE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100" role="img">'
    '<rect width="300" height="100" fill="#ffe08a"/><text x="20" y="58" font-size="20" '
    'font-family="sans-serif" fill="#1b1b1b">Bannerfield: summer deals</text></svg>'
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    media: str
    headers: tuple[tuple[str, str], ...] = ()


def _recipient(host: str | None) -> str | None:
    name = (host or "").split(":", 1)[0].lower()
    label = name.removesuffix(".localhost")
    return label if name.endswith(".localhost") and label in _TAGS else None


def tag_script(recipient: str, origin: str) -> str:
    cookie, key, vendor = _TAGS[recipient]
    consts = (
        f"var NAME = {json.dumps(recipient)}, ORIGIN = {json.dumps(origin)}, "
        f"COOKIE = {json.dumps(cookie)}, KEY = {json.dumps(key)}, VENDOR = {vendor or 0};"
    )
    body = _ANALYTICS if vendor is None else _AD
    return f"(function () {{\n{consts}{_COMMON}{body}}})();\n"


# The player asks the page's CMP for the TC string through the __tcfapiLocator frame, as an ad
# in a cross-origin frame does, and shows what it got (``#tcf``).
_ASK_CMP = """<script>
(function () {
  var out = document.getElementById("tcf"), f = window, cmp = null;
  for (;;) {
    try { if (f.frames.__tcfapiLocator) { cmp = f; break; } } catch (e) {}
    if (f === window.top) break;
    f = f.parent;
  }
  if (!cmp) { out.textContent = "no CMP"; return; }
  window.addEventListener("message", function (e) {
    var d = e.data;
    if (typeof d === "string") { try { d = JSON.parse(d); } catch (x) { return; } }
    var r = d && d.__tcfapiReturn;
    if (r && r.callId === "video") out.textContent = r.success ? r.returnValue.tcString : "refused";
  });
  cmp.postMessage({__tcfapiCall: {command: "getTCData", version: 2, callId: "video"}}, "*");
})();
</script>"""


def _video(query: str) -> str:
    product = html.escape(parse_qs(query).get("product", ["?"])[0])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Product video</title>'
        '</head><body style="margin:0;background:#111;color:#fff;font:16px sans-serif">'
        f'<p style="padding:1rem">Bannerfield video player: product {product} (demo)</p>'
        '<p style="padding:0 1rem;font-size:10px;word-break:break-all">TC string: '
        f'<span id="tcf">asking the CMP</span></p>{_ASK_CMP}</body></html>'
    )


def serve(path: str, query: str, host: str | None) -> Answer | None:
    """The answer to a GET on the partners' port for a tag, a beacon or the video; None when
    the path is not one of them (the receiver's own pages answer)."""
    recipient = _recipient(host)
    if recipient is None:
        return None
    origin = f"http://{host}"
    if path == TAG_PATH:
        script = tag_script(recipient, origin).encode()
        return Answer(200, script, "text/javascript; charset=utf-8")
    if path in PIXEL_PATHS:
        if path == "/ad.svg":
            return Answer(200, _AD_IMAGE.encode(), "image/svg+xml")
        return Answer(204, b"", "text/plain")
    if path == VIDEO_PATH and recipient == "bannerfield":
        return Answer(200, _video(query).encode(), "text/html; charset=utf-8")
    return None
