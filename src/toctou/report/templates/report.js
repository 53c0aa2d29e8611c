(function () {
  "use strict";
  var config = { displaylogo: false, responsive: true, typesetMath: false };
  function draw(el) {
    if (el.getAttribute("data-drawn")) { return; }
    el.setAttribute("data-drawn", "1");
    var figure = JSON.parse(document.getElementById(el.getAttribute("data-figure")).textContent);
    Plotly.newPlot(el, figure.data, figure.layout, config).then(function () {
      if (!el.getAttribute("data-links")) { return; }
      el.on("plotly_click", function (event) {
        var key = event.points.length ? event.points[0].customdata : "";
        if (key) { window.location.hash = key; }
      });
    });
  }
  var plots = Array.prototype.slice.call(document.querySelectorAll(".plot[data-figure]"));
  if (!("IntersectionObserver" in window)) { plots.forEach(draw); return; }
  var watcher = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { watcher.unobserve(entry.target); draw(entry.target); }
    });
  }, { rootMargin: "600px 0px" });
  plots.forEach(function (el) { watcher.observe(el); });
})();
