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
  // base.html does not swap 4xx/5xx answers (a stray error page must not land in a panel). A
  // target that shows the server's own explanation opts in per status: data-swap-errors="503"
  // on "Recompute now"'s status, so "the task queue is unreachable" is shown, not dropped. Only
  // an answer that is that target's own partial is swapped, never a proxy's error page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var codes = target && target.getAttribute("data-swap-errors");
    var own = target && String(event.detail.serverResponse).indexOf('id="' + target.id + '"') !== -1;
    if (codes && own && codes.split(/\s+/).indexOf(String(event.detail.xhr.status)) !== -1) {
      event.detail.shouldSwap = true;
      event.detail.isError = false; // the swapped message says it; no second, generic toast
    }
  });
  document.addEventListener("htmx:sendError", function () {
    show("Cannot reach Routeplane. Check your connection; nothing was sent.");
  });
})();

// A slider that mirrors a number input (data-sync="<input id>"): the number input is the one
// the form sends, and its input event is what htmx listens to.
document.addEventListener("input", function (event) {
  var id = event.target.getAttribute && event.target.getAttribute("data-sync");
  var other = id && document.getElementById(id);
  if (other) {
    other.value = event.target.value;
    other.dispatchEvent(new Event("input", { bubbles: true }));
  }
});
