/* consentry.js: the storefront runtime (docs/storefront.md). Load it first in <head>, without
   async or defer. No dependency. The server writes the site's settings into C. */
(function (w, d, C) {
  "use strict";
  if (w.consentry) return;
  var me = d.currentScript;
  var base = me ? new URL(me.src, location.href).origin : location.origin;
  var gpc = navigator.globalPrivacyControl === true;
  var st = null; // {sid, token, perms: {id: allowed}, sig: signals, tc: decoded TC, gpp: parsed}
  var visit = null;
  var shown = false;
  var acted = false;
  var busy = false; // a choice is on its way: TC data waits for the strings that carry it
  var ran = {};
  var tcl = {};
  var gpl = {};
  var waiting = [];
  var next = 1;
  var A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  // -- Consent Mode v2: the defaults before any tag can run --------------------------------
  w.dataLayer = w.dataLayer || [];
  if (typeof w.gtag !== "function") {
    w.gtag = function () {
      w.dataLayer.push(arguments);
    };
  }
  C.defaults.forEach(function (x) {
    var o = { wait_for_update: 500 };
    for (var k in x) o[k] = x[k];
    w.gtag("consent", "default", o);
  });

  // -- bits: TC strings and GPP sections ---------------------------------------------------
  function bits(s) {
    var r = "";
    for (var i = 0; i < s.length; i++) r += ("00000" + A.indexOf(s[i]).toString(2)).slice(-6);
    return r;
  }
  function reader(b) {
    var p = 0;
    var o = {
      i: function (n) {
        var v = parseInt(b.substr(p, n) || "0", 2);
        p += n;
        return v;
      },
      f: function (n) {
        var a = [];
        for (var k = 0; k < n; k++) a.push(b[p + k] === "1");
        p += n;
        return a;
      },
      l: function (n) {
        var t = "";
        for (var k = 0; k < n; k++) t += String.fromCharCode(65 + o.i(6));
        return t;
      },
      fib: function () {
        var t = 0, a = 1, c = 2, prev = "0";
        for (;;) {
          var x = b[p++];
          if (x === undefined || (x === "1" && prev === "1")) return t;
          if (x === "1") t += a;
          var n = a + c;
          a = c;
          c = n;
          prev = x;
        }
      },
      ids: function () {
        var max = o.i(16), out = [];
        if (!o.i(1)) {
          o.f(max).forEach(function (v, k) {
            if (v) out.push(k + 1);
          });
          return out;
        }
        for (var n = o.i(12); n > 0; n--) {
          var range = o.i(1), s = o.i(16), e = range ? o.i(16) : s;
          for (; s <= e; s++) out.push(s);
        }
        return out;
      },
    };
    return o;
  }
  function tcf(s) {
    var r = reader(bits(s.split(".")[0]));
    var t = {
      Version: r.i(6),
      Created: new Date(r.i(36) * 100),
      LastUpdated: new Date(r.i(36) * 100),
      CmpId: r.i(12),
      CmpVersion: r.i(12),
      ConsentScreen: r.i(6),
      ConsentLanguage: r.l(2),
      VendorListVersion: r.i(12),
      PolicyVersion: r.i(6),
      IsServiceSpecific: !!r.i(1),
      UseNonStandardStacks: !!r.i(1),
      SpecialFeatureOptins: r.f(12),
      PurposeConsents: r.f(24),
      PurposeLegitimateInterests: r.f(24),
      PurposeOneTreatment: !!r.i(1),
      PublisherCountryCode: r.l(2),
    };
    t.VendorConsents = r.ids();
    t.VendorLegitimateInterests = r.ids();
    return t;
  }
  var USNAT = ("SharingNotice SaleOptOutNotice SharingOptOutNotice TargetedAdvertisingOptOutNotice " +
    "SensitiveDataProcessingOptOutNotice SensitiveDataLimitUseNotice SaleOptOut SharingOptOut " +
    "TargetedAdvertisingOptOut").split(" ");
  function usnat(s) {
    var parts = s.split("."), r = reader(bits(parts[0])), t = { Version: r.i(6) }, k, a;
    USNAT.forEach(function (n) {
      t[n] = r.i(2);
    });
    for (k = 0, a = []; k < (t.Version > 1 ? 16 : 12); k++) a.push(r.i(2));
    t.SensitiveDataProcessing = a;
    for (k = 0, a = []; k < (t.Version > 1 ? 3 : 2); k++) a.push(r.i(2));
    t.KnownChildSensitiveDataConsents = a;
    "PersonalDataConsents MspaCoveredTransaction MspaOptOutOptionMode MspaServiceProviderMode"
      .split(" ").forEach(function (n) {
        t[n] = r.i(2);
      });
    if (parts[1]) {
      var g = reader(bits(parts[1]));
      t.GpcSegmentType = g.i(2);
      t.Gpc = !!g.i(1);
    }
    return t;
  }
  function gpp(s) {
    var all = s.split("~"), r = reader(bits(all[0])), ids = [], prev = 0, out = {};
    r.i(12);
    for (var n = r.i(12); n > 0; n--) {
      var g = r.i(1), first = prev + r.fib(), last = g ? first + r.fib() : first;
      for (var k = first; k <= last; k++) ids.push(k);
      prev = last;
    }
    ids.forEach(function (id, k) {
      if (id === 2) out.tcfeuv2 = tcf(all[k + 1]);
      if (id === 7) out.usnat = usnat(all[k + 1]);
    });
    return { ids: ids, sections: out };
  }
  function map(list, byId) {
    var o = {};
    list.forEach(function (v, k) {
      if (byId) o[v] = true;
      else o[k + 1] = v;
    });
    return o;
  }

  // -- IAB TCF: __tcfapi ---------------------------------------------------------------------
  function status() {
    return acted ? "useractioncomplete" : shown ? "cmpuishown" : "tcloaded";
  }
  function tcData(id) {
    var t = (st && st.tc) || null;
    return {
      tcString: (st && st.sig.tcf) || "",
      tcfPolicyVersion: C.policy,
      cmpId: C.cmpId,
      cmpVersion: C.cmpVersion,
      gdprApplies: C.gdpr,
      eventStatus: status(),
      cmpStatus: "loaded",
      listenerId: id,
      isServiceSpecific: true,
      useNonStandardTexts: false,
      publisherCC: t ? t.PublisherCountryCode : "",
      purposeOneTreatment: false,
      purpose: {
        consents: t ? map(t.PurposeConsents) : {},
        legitimateInterests: t ? map(t.PurposeLegitimateInterests) : {},
      },
      vendor: {
        consents: t ? map(t.VendorConsents, 1) : {},
        legitimateInterests: t ? map(t.VendorLegitimateInterests, 1) : {},
      },
      specialFeatureOptins: t ? map(t.SpecialFeatureOptins) : {},
      publisher: { consents: {}, legitimateInterests: {}, restrictions: {} },
    };
  }
  function tcfapi(cmd, ver, cb, param) {
    if (typeof cb !== "function") return;
    if (cmd === "ping") {
      cb({
        gdprApplies: C.gdpr,
        cmpLoaded: true,
        cmpStatus: "loaded",
        displayStatus: shown ? "visible" : "hidden",
        apiVersion: "2.2",
        cmpVersion: C.cmpVersion,
        cmpId: C.cmpId,
        gvlVersion: C.gvl,
        tcfPolicyVersion: C.policy,
      }, true);
    } else if (cmd === "getTCData") {
      if (st && !busy) cb(tcData(), true);
      else waiting.push(function () {
        cb(tcData(), true);
      });
    } else if (cmd === "addEventListener") {
      var id = next++;
      tcl[id] = cb;
      if (st) cb(tcData(id), true);
    } else if (cmd === "removeEventListener") {
      var had = param in tcl;
      delete tcl[param];
      cb(had, true);
    } else cb(null, false);
  }

  // -- IAB GPP: __gpp --------------------------------------------------------------------------
  function ping() {
    var g = st && st.gpp;
    return {
      gppVersion: "1.1",
      cmpStatus: "loaded",
      cmpDisplayStatus: shown ? "visible" : "hidden",
      signalStatus: st ? "ready" : "not ready",
      supportedAPIs: ["2:tcfeuv2", "7:usnat"],
      cmpId: C.cmpId,
      sectionList: g ? g.ids : [],
      applicableSections: g ? (C.gdpr ? [2] : [7]) : [-1],
      gppString: (st && st.sig.gpp) || "",
      parsedSections: g ? g.sections : {},
    };
  }
  function gppEvent(id, name, data) {
    return { eventName: name, listenerId: id, data: data, pingData: ping() };
  }
  function gppapi(cmd, cb, param) {
    if (typeof cb !== "function") return;
    var sec = (st && st.gpp && st.gpp.sections) || {};
    if (cmd === "ping") cb(ping(), true);
    else if (cmd === "addEventListener") {
      var id = next++;
      gpl[id] = cb;
      cb(gppEvent(id, "listenerRegistered", true), true);
      if (st) cb(gppEvent(id, "signalStatus", "ready"), true);
    } else if (cmd === "removeEventListener") {
      var had = param in gpl;
      delete gpl[param];
      cb(gppEvent(param, "listenerRemoved", had), had);
    } else if (cmd === "hasSection") cb(param in sec, true);
    else if (cmd === "getSection") cb(sec[param] || null, true);
    else if (cmd === "getField") {
      var p = String(param).split(".");
      cb(sec[p[0]] && p[1] in sec[p[0]] ? sec[p[0]][p[1]] : null, true);
    } else cb(null, false);
  }
  w.__tcfapi = tcfapi;
  w.__gpp = gppapi;

  // Locator frames and postMessage calls from frames (ad slots in iframes).
  function locators() {
    ["__tcfapiLocator", "__gppLocator"].forEach(function (n) {
      if (w.frames[n]) return;
      var f = d.createElement("iframe");
      f.name = n;
      f.title = n;
      f.setAttribute("aria-hidden", "true");
      f.tabIndex = -1;
      f.style.display = "none";
      d.body.appendChild(f);
    });
  }
  w.addEventListener("message", function (e) {
    var m = e.data, json = typeof m === "string";
    try {
      if (json) m = JSON.parse(m);
    } catch (x) {
      return;
    }
    if (!m || !e.source) return;
    function reply(key, call) {
      return function (value, ok) {
        var o = {};
        o[key] = { returnValue: value, success: ok, callId: call.callId };
        e.source.postMessage(json ? JSON.stringify(o) : o, "*");
      };
    }
    var c = m.__tcfapiCall;
    if (c) tcfapi(c.command, c.version, reply("__tcfapiReturn", c), c.parameter);
    c = m.__gppCall;
    if (c) gppapi(c.command, reply("__gppReturn", c), c.parameter, c.version);
  });

  // -- the gate: scripts and frames run only while their permission allows -------------------
  function allowed(ids) {
    return !!st && String(ids).split(/\s+/).every(function (id) {
      return st.perms[id] === true;
    });
  }
  function gate() {
    var T = (visit && visit.texts) || {};
    d.querySelectorAll("script[type='text/plain'][data-consent],iframe[data-consent]").forEach(
      function (el) {
        var ids = el.getAttribute("data-consent"), ok = allowed(ids);
        if (el.tagName === "SCRIPT") {
          if (!ok || el.hasAttribute("data-consentry-ran")) return;
          var s = d.createElement("script");
          for (var k = 0; k < el.attributes.length; k++) {
            var a = el.attributes[k];
            if (!/^(type|data-src|data-consent)$/.test(a.name)) s.setAttribute(a.name, a.value);
          }
          s.async = false;
          if (el.getAttribute("data-src")) s.src = el.getAttribute("data-src");
          else s.text = el.text;
          el.setAttribute("data-consentry-ran", "");
          ids.split(/\s+/).forEach(function (id) {
            ran[id] = 1;
          });
          el.parentNode.insertBefore(s, el.nextSibling);
          return;
        }
        var ph = el.previousElementSibling;
        var mine = ph && ph.hasAttribute("data-consentry-placeholder");
        var on = el.hasAttribute("data-consentry-loaded");
        if (ok) {
          if (mine) ph.remove();
          el.hidden = false;
          if (!on) el.src = el.getAttribute("data-src");
          el.setAttribute("data-consentry-loaded", "");
          return;
        }
        if (on || el.getAttribute("src")) el.src = "about:blank"; // stop what it was showing
        el.removeAttribute("data-consentry-loaded");
        el.hidden = true;
        if (mine || !T.blocked) return;
        var title = ids;
        (visit.permissions || []).forEach(function (p) {
          if (p.id === ids) title = p.title;
        });
        var box = h("div", { "data-consentry-placeholder": "", class: "consentry-placeholder" }, [
          h("p", {}, [T.blocked.replace("{title}", title)]),
          h("button", { type: "button", class: "consentry-btn", "data-consentry-open": "" }, [
            T.unblock,
          ]),
        ]);
        el.parentNode.insertBefore(box, el);
      }
    );
  }

  // Cookies and storage keys of permissions that no longer allow, as the catalogue lists them.
  function matches(p, n) {
    return p.slice(-1) === "*" ? n.indexOf(p.slice(0, -1)) === 0 : n === p;
  }
  function owned(n) {
    var off = false, on = false;
    for (var id in C.storage) {
      if (!C.storage[id].some(function (p) {
        return matches(p, n);
      })) continue;
      if (st.perms[id] === true) on = true;
      else off = true;
    }
    return off && !on;
  }
  function sweep() {
    d.cookie.split(";").forEach(function (c) {
      var n = c.split("=")[0].trim();
      if (!n || !owned(n)) return;
      var host = location.hostname.split("."), doms = [""];
      for (var k = 0; k < host.length - 1; k++) doms.push(";domain=." + host.slice(k).join("."));
      doms.forEach(function (dm) {
        d.cookie = n + "=;expires=Thu, 01 Jan 1970 00:00:00 GMT;path=/" + dm;
      });
    });
    [w.localStorage, w.sessionStorage].forEach(function (s) {
      try {
        for (var k = s.length - 1; k >= 0; k--) if (owned(s.key(k))) s.removeItem(s.key(k));
      } catch (x) {
        /* storage blocked by the browser: nothing to remove */
      }
    });
  }

  // -- the server: one source of truth ---------------------------------------------------------
  function api(method, path, body) {
    return fetch(base + path, {
      method: method,
      credentials: "include",
      headers: Object.assign(
        { "Content-Type": "application/json" },
        visit ? { Authorization: "Bearer " + visit.token } : {}
      ),
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (r) {
      if (!r.ok) throw new Error("consentry: " + method + " " + path + " answered " + r.status);
      return r.json();
    });
  }
  // Answer the getTCData calls that waited for the strings.
  function release() {
    waiting.splice(0).forEach(function (f) {
      f();
    });
  }
  function refresh() {
    var sid = encodeURIComponent(visit.subject);
    return Promise.all([
      api("GET", "/v1/subjects/" + sid + "/permissions"),
      api("GET", "/v1/subjects/" + sid + "/signals?locale=" + visit.locale + (gpc ? "&gpc=true" : "")),
    ]).then(function (r) {
      var perms = {}, before = st;
      r[0].permissions.forEach(function (p) {
        perms[p.id] = p.effective;
      });
      st = { perms: perms, sig: r[1], tc: r[1].tcf ? tcf(r[1].tcf) : null, gpp: gpp(r[1].gpp) };
      w.gtag("consent", "update", r[1].consent_mode);
      sweep();
      var reload = before && Object.keys(ran).some(function (id) {
        return before.perms[id] === true && perms[id] !== true;
      });
      if (reload) return location.reload();
      busy = false;
      gate();
      Object.keys(tcl).forEach(function (id) {
        tcl[id](tcData(+id), true);
      });
      Object.keys(gpl).forEach(function (id) {
        gpl[id](gppEvent(+id, before ? "sectionChange" : "signalStatus", before ? "tcfeuv2" : "ready"), true);
      });
      release();
      w.dispatchEvent(new CustomEvent("consentry:change", { detail: perms }));
    });
  }

  // -- the banner --------------------------------------------------------------------------------
  function h(tag, attrs, kids) {
    var e = d.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) {
      e.append(c);
    });
    return e;
  }
  // The banner closes once the choice is in effect: strings, Consent Mode and the gate.
  function choose(body) {
    acted = true;
    busy = true;
    body.banner = visit.banner;
    body.locale = visit.locale;
    body.gpc = gpc;
    return api("POST", "/v1/subjects/" + encodeURIComponent(visit.subject) + "/choices", body)
      .then(refresh)
      .then(close, function (e) {
        acted = busy = false;
        release();
        throw e;
      });
  }
  function close() {
    var b = d.getElementById("consentry-banner");
    if (b) b.remove();
    shown = false;
  }
  function open(layer) {
    if (!visit || d.getElementById("consentry-banner")) return;
    var T = visit.texts, boxes = [];
    function btn(a, label) {
      return h("button", { type: "button", class: "consentry-btn", "data-action": a }, [label]);
    }
    (visit.permissions || []).forEach(function (p) {
      var box = h("input", { type: "checkbox", name: p.id, id: "consentry-" + p.id });
      box.checked = !!(st && st.perms[p.id]);
      boxes.push(h("div", { class: "consentry-row" }, [
        box,
        h("label", { for: "consentry-" + p.id }, [p.title]),
      ]));
    });
    var form = h("form", { class: "consentry-choose" }, [
      h("fieldset", {}, [h("legend", {}, [T.legend])].concat(boxes)),
      h("button", { type: "submit", class: "consentry-btn" }, [T.save]),
    ]);
    form.hidden = layer !== "choose";
    var el = h("section", {
      id: "consentry-banner",
      lang: visit.locale,
      "aria-labelledby": "consentry-title",
    }, [
      h("h2", { id: "consentry-title" }, [T.title]),
      h("p", {}, [T.text]),
      h("p", {}, [h("a", { href: base + visit.link }, [T.link])]),
      h("div", { class: "consentry-actions" }, [
        btn("refuse", T.refuse),
        btn("accept", T.accept),
        btn("choose", T.choose),
      ]),
      form,
    ]);
    el.addEventListener("click", function (e) {
      var a = e.target.getAttribute && e.target.getAttribute("data-action");
      if (a === "refuse") choose({ all: "denied" });
      if (a === "accept") choose({ all: "granted" });
      if (a === "choose") {
        form.hidden = false;
        form.querySelector("input").focus();
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var set = {};
      (visit.permissions || []).forEach(function (p) {
        set[p.id] = form.elements[p.id].checked ? "granted" : "denied";
      });
      choose({ set: set });
    });
    d.body.prepend(el);
    shown = true;
  }
  d.addEventListener("click", function (e) {
    var t = e.target.closest && e.target.closest("[data-consentry-open]");
    if (t) {
      e.preventDefault();
      open("choose");
    }
  });

  // -- start ---------------------------------------------------------------------------------
  function ready(f) {
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", f);
    else f();
  }
  var css = d.createElement("link");
  css.rel = "stylesheet";
  css.href = base + "/consentry.css";
  d.head.appendChild(css);
  var langs = [d.documentElement.lang].concat(navigator.languages || []).filter(Boolean);
  var started = api("POST", "/v1/storefront/visit", { languages: langs, gpc: gpc })
    .then(function (v) {
      visit = v;
      return refresh();
    });
  ready(function () {
    locators();
    started.then(function () {
      if (visit.ask.length) open();
      gate();
    });
  });
  w.consentry = {
    allowed: allowed,
    open: open,
    subject: function () {
      return visit && visit.subject;
    },
    // After sign-in: merge this browser's choices into the account (its subject token).
    merge: function (account, token) {
      return fetch(base + "/v1/subjects/" + encodeURIComponent(account) + "/merge-device", {
        method: "POST",
        credentials: "include",
        headers: { Authorization: "Bearer " + token },
      }).then(function (r) {
        if (!r.ok) throw new Error("consentry: merge answered " + r.status);
        return r.json();
      });
    },
    ready: started,
    gpc: gpc,
  };
})(window, document, /*CONFIG*/ {});
