// ashiato CMP adapter: reads the site's consent management platform and tells the tag
// through ashiato('consent', {analytics, marketing, source, signal}). Loaded, beside
// t.js, only on sites that read a CMP; its data-* attributes (printed by `ashiato site
// add`) map the CMP's purposes to ashiato's:
//   data-tcf-analytics="1,8" data-tcf-marketing="1,3,5"     IAB TCF v2.2 purpose ids
//     ("p1": the publisher's own consent for purpose 1); every one must be consented
//   data-gcm-analytics="analytics_storage" data-gcm-marketing="ad_storage,…"
//     Google Consent Mode v2 types; every one must be granted
// Only the visitor's decisions are passed on: TCF `tcloaded` / `useractioncomplete`
// where GDPR applies, and Consent Mode `update` commands (a `default` only fills in
// types no update named). A decision the tag already holds is not sent again, so a
// returning visitor's CMP does not add a receipt on every page. The server decodes the
// TC string itself and maps it with the site's setting: the claim here only lets the
// tag decide at once.
(() => {
  try {
    const w = window, map = document.currentScript.dataset;
    // The snippet's stub, in case this file runs first; the tag replays its queue.
    w.ashiato = w.ashiato || function () { (w.ashiato.q = w.ashiato.q || []).push(arguments) };
    const held = k => { try { return localStorage.getItem(k) } catch (e) {} };
    const tell = (source, analytics, marketing, signal) => {
      if (held('_ashiato_a') != +analytics || held('_ashiato_m') != +marketing) {
        w.ashiato('consent', {analytics, marketing, source, signal});
      }
    };

    // IAB TCF v2.2: the CMP's stub defines __tcfapi early; wait up to 10 s for it.
    const consented = (d, ids) => ids.split(',').every(id => {
      const o = id[0] == 'p' ? d.publisher : d.purpose;
      return !!(o && o.consents && o.consents[id.replace('p', '')]);
    });
    const tcf = n => {
      if (typeof w.__tcfapi != 'function') return n < 40 && setTimeout(tcf, 250, n + 1);
      w.__tcfapi('addEventListener', 2, (d, ok) => {
        if (ok && d && d.gdprApplies && /^(tcloaded|useractioncomplete)$/.test(d.eventStatus)) {
          tell('tcf', consented(d, map.tcfAnalytics), consented(d, map.tcfMarketing), d.tcString);
        }
      });
    };
    if (map.tcfAnalytics != null) tcf(0);

    // Google Consent Mode v2: gtag() pushes its arguments onto dataLayer. Replay what is
    // there, then follow later pushes (GTM wraps push and calls ours in turn).
    const defaults = {}, updates = {};
    let decided;
    const granted = (state, types) => types.split(',').every(t => state[t] == 'granted');
    const gcm = a => {
      if (!a || a[0] != 'consent' || Object(a[2]) !== a[2]) return;
      if (a[1] == 'update') decided = Object.assign(updates, a[2]);
      else if (a[1] == 'default' && !a[2].region) Object.assign(defaults, a[2]);
      if (!decided) return;
      const state = Object.assign({}, defaults, updates);
      const signal = Object.keys(state).filter(k => /^(ad|analytics|functionality|personalization|security)_/.test(k))
        .map(k => k + '=' + state[k]).join();
      tell('gcm', granted(state, map.gcmAnalytics), granted(state, map.gcmMarketing), signal);
    };
    if (map.gcmAnalytics != null) {
      const layer = w.dataLayer = w.dataLayer || [], push = layer.push;
      layer.forEach(gcm);
      layer.push = function () {
        const r = push.apply(this, arguments);
        for (const a of arguments) { try { gcm(a) } catch (e) {} }
        return r;
      };
    }
  } catch (e) {}
})();
