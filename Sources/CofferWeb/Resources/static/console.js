// Progressive enhancement only: every form works without this file.
// Disables a form's buttons once it is submitted, so a double click sends one request (the server's idempotency key
// would make a second one harmless anyway).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.method.toLowerCase() !== "post") return;
  setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  }, 0);
});

// Copy buttons (shown only where this file runs): the value without the spaces it is shown with.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    if (!navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = button.getAttribute("data-copied");
    });
  });
});
