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
