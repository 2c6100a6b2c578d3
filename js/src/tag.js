// ashiato browser tag: page views, custom events, outbound and download clicks,
// consent, identify and form capture.
// Plain ES2017, no dependencies; `npm run build` minifies it into tracker/static/t.js.
// Written for the minifier: locals are renamed, property names are not, so browser
// globals are aliased once and property names are kept few.
(() => {
  try {
    const w = window, d = document, loc = location, nav = navigator, hist = history;
    const stub = w.ashiato;
    // Two snippets on one page must not double every event: the first copy wins.
    if (stub && stub.l) return;
    const script = d.currentScript || d.querySelector('script[data-site]');
    const site = script && script.dataset.site;
    if (!site) return;
    // Relative to the tag's own URL, so a collector on its own host
    // (https://t.example.co.jp/t.js) and one under a path (/ashiato/t.js) both work.
    const endpoint = new URL('collect', script.src).href;

    const SID = '_ashiato_sid', M = '_ashiato_m', A = '_ashiato_a';

    // The tag runs inside someone else's page: nothing it does may throw into it
    // (a thrown error would also land in the site's own error monitoring).
    const safe = f => (...a) => { try { return f(...a) } catch (e) {} };
    const on = (target, type, f) => target.addEventListener(type, safe(f), true);
    const hex = bytes => Array.from(crypto.getRandomValues(new Uint8Array(bytes)),
      b => (b | 256).toString(16).slice(1)).join('');
    // localStorage throws when blocked (settings, sandboxed frames): then it is a no-op.
    const ls = (method, k, v) => { try { return localStorage[method](k, v) } catch (e) {} };

    // Visitor id: first-party cookie, 128 random bits. Written only when missing or
    // invalid and never rewritten, so later visits do not extend its 13 months.
    // Read on every event (another tab may have just created it); the last value is
    // kept in memory so a page where cookies are blocked keeps one id.
    let vid;
    const cookie = () => (d.cookie.match(/(?:^|; )_ashiato_vid=([0-9a-f]{32})(?:;|$)/) || [])[1];
    const setCookie = v => d.cookie = '_ashiato_vid=' + v + '; path=/; samesite=lax' +
      (loc.protocol == 'https:' ? '; secure' : '');
    const visitor = () => vid = cookie() || setCookie((vid = vid || hex(16)) + '; max-age=34128000') && vid;

    // Session id: new after 30 minutes without events. Kept as "<sid>.<lastMs>" in
    // localStorage (shared by the site's tabs, never sent in requests); in memory when
    // storage throws (blocked storage, sandboxed frames).
    // Held events released after consent are older than the consent beacon: the last
    // activity time never goes back, or the next event would start a new session.
    let sidMemory;
    const session = ts => {
      const m = /^([0-9a-f]{16})\.(\d+)$/.exec(ls('getItem', SID) || sidMemory);
      sidMemory = (m && ts - m[2] < 18e5 ? m[1] : hex(8)) + '.' + (m && m[2] > ts ? m[2] : ts);
      ls('setItem', SID, sidMemory);
      return sidMemory.slice(0, 16);
    };

    // Transport: events wait for the next macrotask so those of one tick share a body,
    // and are flushed at once when the page is hidden or left (timers may never run
    // again). A string body is text/plain: CORS-simple, no preflight.
    let queue = [], timer = 0;
    const send = body => {
      try {
        if (!(nav.sendBeacon && nav.sendBeacon(endpoint, body))) {
          // A string body is sent as text/plain;charset=UTF-8 without a headers option.
          fetch(endpoint, {method: 'POST', body, keepalive: true, credentials: 'include'})
            .catch(() => {});
        }
      } catch (e) {}
    };
    const flush = safe(() => {
      clearTimeout(timer);
      timer = 0;
      while (queue.length) {
        const batch = queue.splice(0, 20), sent = Date.now();
        for (const e of batch) e.sent = sent;
        send(JSON.stringify(batch[1] ? {events: batch} : batch[0]));
      }
    });

    // CONSENT. `data-consent="notice"` (Japan): tracking starts at once, the visitor
    // may opt out. Anything else is opt-in (EU): the cookie exists only after consent,
    // so its presence means analytics was granted on an earlier page. The visitor's own
    // marketing choice (`_ashiato_m`) beats the defaults; GPC means no marketing unless
    // granted explicitly. An undefined field is left out of the JSON.
    const notice = script.dataset.consent == 'notice';
    const gpc = nav.globalPrivacyControl || void 0;
    // The analytics choice outlives the page in `_ashiato_a` ('1'/'0', no id in it): a
    // cookie the collector sets itself is HttpOnly, so its presence cannot tell.
    const stored = ls('getItem', M), choice = ls('getItem', A);
    let analytics = choice ? choice == '1' : notice || !!cookie();
    let marketing = stored ? stored == '1' : notice && !gpc;
    // Events made before analytics is granted wait here with their original ts, before
    // vid/sid exist (no cookie, no storage, no request); false after a refusal: nothing
    // is kept until analytics is granted again.
    let held = [];

    // `ref` is the referrer of the current page view, so events carry the referrer of
    // the page they happened on.
    let ref = d.referrer, lastHref;
    const make = (type, fields) => Object.assign({site, type, url: loc.href, referrer: ref,
      title: d.title, ts: Date.now(), gpc}, fields);
    const enqueue = e => {
      e.vid = visitor();
      e.sid = session(e.ts);
      queue.push(e);
      timer = timer || setTimeout(flush, 0);
    };
    // The one place page views and events go through.
    const track = (type, fields) => {
      const e = make(type, fields);
      if (analytics) enqueue(e);
      else if (held && held.push(e) > 100) held.shift();
    };
    // Refusal and forget: the last beacon goes out (only to a visitor the cookie
    // proves), then every trace in the browser is removed and nothing more is sent.
    // (`e` is false when nothing was ever sent: no one to tell.) An HttpOnly cookie the
    // collector set is not ours to delete: its answer to this beacon clears it.
    const stop = e => {
      if (e) enqueue(e);
      flush();
      setCookie('; max-age=0');
      ls('removeItem', SID);
      ls('removeItem', M);
      ls('setItem', A, 0);
      vid = sidMemory = held = analytics = marketing = false;
    };
    // Another tab refused or forgot (it removed the session): stop here too, or this
    // tab's next event would write the cookie again.
    on(w, 'storage', e => e.key == SID && !e.newValue && stop());

    // A page view is sent only when the URL differs from the last one sent, so
    // replaceState to the same URL or a push that is popped back adds nothing.
    // `force` is for a bfcache restore: the same URL shown again is a new view.
    // In-page anchors (#pricing) are not new pages; hash routes (#/pricing) are.
    const page = safe((o, force) => {
      o = o || {};
      const url = (o.url ? new URL(o.url, loc.href).href : loc.href).replace(/#(?![!/]).*/, '');
      if (url == lastHref && !force) return;
      // In a single-page app the previous page is the referrer.
      if (lastHref && url != lastHref) ref = lastHref;
      lastHref = url;
      track('pageview', {url, title: '' + (o.title || d.title)});
    });
    // History changes are checked on the next macrotask: a push followed by a replace
    // in one tick counts once, and a title set right after pushState is seen.
    const soon = () => setTimeout(page, 0);
    for (const k of ['pushState', 'replaceState']) {
      const original = hist[k];
      hist[k] = function () {
        const r = original.apply(this, arguments);
        soon();
        return r;
      };
    }
    on(w, 'popstate', soon);
    on(w, 'pageshow', e => e.persisted && page(0, 1));
    // Leaving: first the SPA navigation still waiting for its macrotask, then everything.
    const leave = () => { page(); flush(); };
    on(w, 'pagehide', leave);
    on(d, 'visibilitychange', () => d.hidden && leave());

    // Outbound and download links, by one delegated listener. `click` is the primary
    // button; `auxclick` also fires for the right button, so only its middle one counts.
    const FILES = /\.(pdf|zip|docx?|xlsx?|pptx?|csv|txt|dmg|exe|msi|pkg|mp3|mp4|mov|avi|7z|rar|gz|tgz|key|pages|numbers|epub)$/i;
    const click = e => {
      // (SVG links have no string href; new URL then throws and the click is ignored.)
      const a = e.target.closest('a[href]');
      if (!a || e.button != (e.type == 'click' ? 0 : 1)) return;
      const u = new URL(a.href);
      // mailto:, tel:, javascript: are not visits (and a mailto: holds an address).
      if (!/^http/.test(u.protocol)) return;
      const name = a.hasAttribute('download') || FILES.test(u.pathname) ? 'download'
        : u.host != loc.host ? 'outbound' : '';
      // Sent at once: the browser is about to leave the page.
      if (name) track('event', {name, props: {url: u.href}}), flush();
    };
    on(d, 'click', click);
    on(d, 'auxclick', click);

    // Props must be flat: keep strings, numbers and booleans, drop anything else, so
    // one odd value cannot get a whole batch rejected by the collector.
    const flat = p => {
      const o = {};
      for (const k of Object.keys(Object(p))) {
        if (/^(string|number|boolean)$/.test(typeof p[k])) o[k] = p[k];
      }
      return o;
    };

    // Identify: string traits only (trimmed, at most 1,000 characters, 20 keys of at
    // most 64), the backend-signed `token` beside them. Sent only with an email the
    // collector accepts: one bad event gets its whole body rejected, and identify is
    // flushed together with whatever else was queued. Needs analytics and marketing,
    // and is never held: personal data does not wait for a consent that may never
    // come. Sent at once, since a navigation often follows.
    const str = (v, max = 1000) => typeof v == 'string' && v.trim().slice(0, max) || void 0;
    const identify = (traits, form) => {
      // (A string has the keys 0, 1, 2, ..., never email: nothing is sent.)
      traits = Object(traits);
      const t = {};
      for (const k of Object.keys(traits)) {
        const v = str(traits[k]);
        if (v && k != 'token' && !k[64] && Object.keys(t).length < 20) t[k] = v;
      }
      if (analytics && marketing && /^(?=.*[@\uff20]).{3,254}$/.test(t.email)) {
        enqueue(make('identify', {traits: t, token: str(traits.token, 512), form: str(form, 128)}));
        flush();
      }
    };

    // Forms marked data-ashiato (or all, with data-forms="all") identify by their email
    // field. Password, hidden, file and card (autocomplete cc-*) fields are never read.
    // Attributes are read with getAttribute: a field named "id" or "name" shadows the
    // form's own properties.
    const TRAITS = /^((first_?|last_?|full_)?name|company|organi[sz]ation|phone|tel|(job_)?title|department|industry|country|city|message)$/;
    const allForms = script.dataset.forms == 'all';
    on(d, 'submit', e => {
      const f = e.target, t = {}, attr = (el, a) => el.getAttribute(a);
      let typed, named;
      if (!allForms && !f.hasAttribute('data-ashiato')) return;
      for (const el of f.elements) {
        const type = el.type, name = el.name || '', key = attr(el, 'data-ashiato-field');
        if (/^(password|hidden|file|submit|button|reset|image)$/.test(type) ||
          /\bcc-/i.test(attr(el, 'autocomplete')) || el.disabled ||
          /^(checkbox|radio)$/.test(type) && !el.checked) continue;
        const v = str(el.value);
        if (!v) continue;
        if (type == 'email') typed = typed || v;
        else if (/e-?mail/i.test(name)) named = named || v;
        if (key != null) t[key || name] = v;
        else if (TRAITS.test(name.toLowerCase())) t[name.toLowerCase()] = v;
      }
      t.email = typed || named || t.email;
      t.token = attr(f, 'data-ashiato-token');
      identify(t, attr(f, 'id') || attr(f, 'name') || 'form');
    });

    // Public commands. Unknown names are ignored (no prototype: 'toString' is unknown).
    const commands = {
      __proto__: null,
      page: o => page(o),
      event: (name, props) => name && track('event', {name: '' + name, props: flat(props)}),
      identify: traits => identify(traits),
      // {analytics, marketing, policy}; an omitted (or non-boolean) purpose is unchanged.
      // The CMP adapter (cmp.js) adds the CMP's `source` and `signal` (a TC string).
      consent: o => {
        o = Object(o);
        const a = o.analytics, k = o.marketing;
        if (k === !!k) ls('setItem', M, +(marketing = k));
        const was = analytics;
        if (a === !!a) analytics = a;
        const e = make('consent', {cid: hex(16), consent: {analytics, marketing: analytics && marketing},
          policy: str(o.policy, 64), source: str(o.source, 8), signal: str(o.signal, 8192)});
        if (a === false) stop(was && e);
        else if (analytics) {
          // The consent first, then what waited for it, in order.
          ls('setItem', A, 1);
          [e, ...held || []].map(enqueue);
          held = [];
          flush();
        }
      },
      forget: () => stop(analytics && make('forget')),
    };
    const ashiato = safe((c, ...args) => commands[c] && commands[c](...args));
    ashiato.l = 1; // marks the real dispatcher for the double-load check above

    // Replay what the snippet queued before the tag arrived (a queued page command
    // with a url/title override then becomes the first page view), then take over.
    for (const a of (stub && stub.q) || []) ashiato.apply(0, a);
    w.ashiato = ashiato;
    page();
  } catch (e) {}
})();
