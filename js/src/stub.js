// The snippet's queue stub as a file, for pages whose Content-Security-Policy allows no
// inline script: load it (not async) before t.js, and calls made before the tag arrives
// are queued and replayed by the tag, as with the inline snippet.
window.ashiato = window.ashiato || function () { (ashiato.q = ashiato.q || []).push(arguments) };
