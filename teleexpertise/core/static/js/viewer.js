// Frame slider and window presets of the document viewer: changes the image URL, the server renders it.
(function () {
  document.querySelectorAll("[data-viewer]").forEach(function (viewer) {
    var image = viewer.querySelector("[data-image]");
    var slider = viewer.querySelector("[data-frame]");
    var label = viewer.querySelector("[data-frame-label]");
    var frames = Array.prototype.map.call(viewer.querySelectorAll("[data-frames] li"), function (li) {
      return li.getAttribute("data-url");
    });
    var preset = "stored";
    function url(index) {
      var base = frames.length ? frames[index] : viewer.getAttribute("data-base") + "?frame=" + index;
      return base + "&preset=" + encodeURIComponent(preset);
    }
    function show() {
      var index = slider ? parseInt(slider.value, 10) : 0;
      image.src = url(index);
      if (label) { label.textContent = String(index + 1); }
    }
    if (slider) { slider.addEventListener("input", show); }
    viewer.querySelectorAll("[data-preset]").forEach(function (button) {
      button.addEventListener("click", function () {
        preset = button.getAttribute("data-preset");
        viewer.querySelectorAll("[data-preset]").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
        show();
      });
    });
  });
})();
