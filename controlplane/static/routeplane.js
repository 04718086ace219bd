// Tells the operator when an htmx action failed instead of failing silently.
(function () {
  function show(message) {
    var box = document.getElementById("connection-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 8000);
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (status === 403) show("Not allowed: viewers cannot change routers. Nothing was changed.");
    else show("The server answered " + status + ". Nothing may have changed; reload to check.");
  });
  document.addEventListener("htmx:sendError", function () {
    show("Cannot reach Routeplane. Check your connection; nothing was sent.");
  });
})();
