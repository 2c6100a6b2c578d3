// ashiato console: copy buttons. Loaded from this origin ('self' in the CSP); no inline code.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy || "");
  if (!source) return;
  const done = () => { button.dataset.label = button.dataset.label || button.textContent;
    button.textContent = "✓"; setTimeout(() => { button.textContent = button.dataset.label; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(done, () => {});
  } else {
    const range = document.createRange(); range.selectNodeContents(source);
    const selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);
    done();
  }
});
