// Draws the dashboards' plotly figures: each <div data-figure="id"> takes the JSON of
// <script type="application/json" id="id">, built server-side. plotly.js is served by
// ClosedLoop itself (analysis.dashboards), never from a CDN.
(function () {
  "use strict";
  function draw() {
    if (!window.Plotly) { return; }
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var source = document.getElementById(node.getAttribute("data-figure"));
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(node, figure.data, figure.layout,
        {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]});
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
