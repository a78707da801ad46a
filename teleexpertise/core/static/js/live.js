/* Live updates by polling: the element with data-live-url names a small JSON endpoint answering {stamp, open,
   message}. When the stamp changes, the page is fetched again and each [data-live-region] is replaced by its
   fresh copy (same id), so forms being typed elsewhere on the page are left alone. Polling stops when the
   endpoint says the case is no longer open. Without JavaScript the page simply stays as it was loaded. */
(function () {
  "use strict";
  var status = document.querySelector("[data-live-url]");
  if (!status) { return; }
  var url = status.getAttribute("data-live-url");
  var every = (parseInt(status.getAttribute("data-live-seconds"), 10) || 5) * 1000;
  var stamp = status.getAttribute("data-live-stamp");

  function refreshRegions() {
    return fetch(window.location.href, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.text();
    }).then(function (text) {
      var fresh = new DOMParser().parseFromString(text, "text/html");
      document.querySelectorAll("[data-live-region]").forEach(function (region) {
        var replacement = fresh.getElementById(region.id);
        if (replacement) { region.replaceWith(document.importNode(replacement, true)); }
      });
    });
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.json();
    }).then(function (data) {
      var next = function () { if (data.open !== false) { window.setTimeout(poll, every); } };
      if (data.stamp === stamp) { next(); return; }
      stamp = data.stamp;
      refreshRegions().then(function () { status.textContent = data.message || ""; }).catch(function () {}).then(next);
    }).catch(function () { window.setTimeout(poll, every * 2); });  /* offline or signed out: try again, slower */
  }

  window.setTimeout(poll, every);
})();
