// The directory import page: poll the run's progress every 2 s and fill the bar until the import ends.
(function () {
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished) return;
  function set(name, value) {
    box.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = value; });
  }
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        document.getElementById("import-bar").value = data.percent;
        ["percent", "status_label", "lines", "created", "updated", "rejected"].forEach(function (k) { set(k, data[k]); });
        if (data.finished) { box.querySelector("[data-reload]").hidden = false; } else { setTimeout(poll, 2000); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
