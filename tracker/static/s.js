(()=>{window.ashiato=window.ashiato||function(){(ashiato.q=ashiato.q||[]).push(arguments)};})();
