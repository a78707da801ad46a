// Uploads each chosen or dropped file on its own request, with a progress bar per file. The file is the whole
// request body (no multipart encoding for the server to parse): its name goes in X-File-Name, the form's other
// fields in the query string. Without JavaScript the form posts all files at once and the page reloads: the same
// endpoint serves both.
(function () {
  var KEPT = "teleexpertise-upload-errors";

  function showKeptErrors(list) {
    var kept = window.sessionStorage && sessionStorage.getItem(KEPT);
    if (!kept || !list) { return; }
    sessionStorage.removeItem(KEPT);
    JSON.parse(kept).forEach(function (text) {
      var item = document.createElement("li");
      item.className = "upload-error";
      item.textContent = text;
      list.appendChild(item);
    });
  }

  function saved(xhr, body, form) {
    // Only the upload endpoint's own JSON listing the new document counts: a login page after an expired session
    // or a proxy error page must never look like a success.
    return xhr.status === 200 && xhr.responseURL.indexOf(form.action) !== -1 &&
      Array.isArray(body.documents) && body.documents.length > 0;
  }

  document.querySelectorAll("[data-uploader]").forEach(function (form) {
    var list = form.querySelector("[data-progress]");
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector("input[type=file]:not([data-camera])");
    var camera = form.querySelector("[data-camera]");
    showKeptErrors(list);

    function send(file) {
      var item = document.createElement("li");
      var bar = document.createElement("progress");
      var text = document.createElement("span");
      bar.max = 100; bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      item.appendChild(document.createTextNode(file.name + " "));
      item.appendChild(bar); item.appendChild(text);
      list.appendChild(item);
      var query = new URLSearchParams({
        kind: form.querySelector("[name=kind]").value,
        attached_to: form.querySelector("[name=attached_to]").value
      });
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action + "?" + query.toString());
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
        xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
        xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
        xhr.upload.addEventListener("progress", function (event) {
          if (event.lengthComputable) { bar.value = Math.round(100 * event.loaded / event.total); }
        });
        function fail(message) {
          bar.remove();
          item.className = "upload-error";
          item.textContent = message.indexOf(file.name) === 0 ? message : file.name + " : " + message;
          resolve({ok: false, error: item.textContent});
        }
        xhr.addEventListener("load", function () {
          var body = {};
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
          if (saved(xhr, body, form)) {
            bar.value = 100; item.className = "upload-done"; text.textContent = " ✓";
            resolve({ok: true});
          } else {
            fail((body.errors && body.errors.length) ? body.errors.join(" ") : form.getAttribute("data-server-error"));
          }
        });
        xhr.addEventListener("error", function () { fail(form.getAttribute("data-network-error")); });
        xhr.send(file);
      });
    }

    function sendAll(files) {
      var chain = Promise.resolve(), results = [];
      Array.prototype.forEach.call(files, function (file) {
        chain = chain.then(function () { return send(file); }).then(function (r) { results.push(r); });
      });
      chain.then(function () {
        var errors = results.filter(function (r) { return !r.ok; }).map(function (r) { return r.error; });
        if (errors.length === results.length) { return; }  // nothing saved: the messages stay on screen
        // Something was saved: reload to list it, and show the refusals again after the reload.
        if (errors.length && window.sessionStorage) { sessionStorage.setItem(KEPT, JSON.stringify(errors)); }
        window.location.reload();
      });
    }

    form.addEventListener("submit", function (event) {
      if (!window.URLSearchParams || !input.files.length) { return; }
      event.preventDefault();
      sendAll(input.files);
    });
    if (camera) { camera.addEventListener("change", function () { sendAll(camera.files); }); }
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      event.stopPropagation();
      sendAll(event.dataTransfer.files);
    });
  });

  // A file dropped beside the zone must not make the browser open it and leave the page.
  ["dragover", "drop"].forEach(function (name) {
    window.addEventListener(name, function (event) { event.preventDefault(); });
  });
})();
