// Uploads each chosen or dropped file on its own request, with a progress bar per file. Without JavaScript the
// form posts all files at once and the page reloads: the same endpoint serves both.
(function () {
  document.querySelectorAll("[data-uploader]").forEach(function (form) {
    var list = form.querySelector("[data-progress]");
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector("input[type=file]:not([data-camera])");
    var camera = form.querySelector("[data-camera]");

    function send(file) {
      var item = document.createElement("li");
      var bar = document.createElement("progress");
      var text = document.createElement("span");
      bar.max = 100; bar.value = 0;
      item.textContent = file.name + " ";
      item.appendChild(bar); item.appendChild(text);
      list.appendChild(item);
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      data.append("kind", form.querySelector("[name=kind]").value);
      data.append("attached_to", form.querySelector("[name=attached_to]").value);
      data.append("files", file);
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.addEventListener("progress", function (event) {
          if (event.lengthComputable) { bar.value = Math.round(100 * event.loaded / event.total); }
        });
        xhr.addEventListener("load", function () {
          var body = {};
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = {errors: [xhr.statusText]}; }
          bar.value = 100;
          if (body.errors && body.errors.length) {
            item.className = "upload-error"; text.textContent = " " + body.errors.join(" ");
          } else {
            item.className = "upload-done"; text.textContent = " ✓";
          }
          resolve(!(body.errors && body.errors.length));
        });
        xhr.addEventListener("error", function () {
          item.className = "upload-error"; text.textContent = " " + form.getAttribute("data-network-error");
          resolve(false);
        });
        xhr.send(data);
      });
    }

    function sendAll(files) {
      var chain = Promise.resolve(true), ok = true;
      Array.prototype.forEach.call(files, function (file) {
        chain = chain.then(function () { return send(file); }).then(function (done) { ok = ok && done; });
      });
      chain.then(function () { if (ok) { window.location.reload(); } });
    }

    form.addEventListener("submit", function (event) {
      if (!window.FormData || !input.files.length) { return; }
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
      sendAll(event.dataTransfer.files);
    });
  });
})();
