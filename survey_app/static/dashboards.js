// Draws the dashboards' plotly figures: each <div data-figure="id"> takes the JSON of
// <script type="application/json" id="id">, built server-side. plotly.js is served by
// ClosedLoop itself (analysis.dashboards), never from a CDN.
// Also folds the sticky filter bar: the "Filters" button shows or hides the less used
// filters (on a phone, the whole form); Escape folds it again.
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
  function foldFilters() {
    // The bar shows every filter while it sits in the page; once it sticks to the top of
    // the window (a sentinel above it scrolls away), and always on a phone, it folds to
    // its first row and the "Filters" button opens it. Its bottom margin makes up for
    // folding and opening, so the page under it never jumps (an open bar covers it).
    var bar = document.getElementById("dash-bar");
    var button = bar && bar.querySelector("[data-filter-toggle]");
    if (!button || !window.IntersectionObserver) { return; }
    var phone = window.matchMedia("(max-width: 40rem)");
    var sentinel = document.createElement("div");
    var stuck = false;
    var reference = 0;
    function settle() {
      bar.style.marginBottom = "";
      if (!stuck && !bar.classList.contains("dash-bar--open")) {
        reference = bar.offsetHeight;
      } else if (reference) {
        bar.style.marginBottom = "calc(1rem + " + (reference - bar.offsetHeight) + "px)";
      }
    }
    function show(open) {
      bar.classList.toggle("dash-bar--open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
      settle();
    }
    function update() {
      var foldable = stuck || phone.matches;
      bar.classList.toggle("dash-bar--stuck", stuck);
      if (button.hidden === foldable) {
        button.hidden = !foldable;
        bar.classList.remove("dash-bar--open");
        button.setAttribute("aria-expanded", "false");
      }
      settle();
    }
    sentinel.setAttribute("aria-hidden", "true");
    bar.parentNode.insertBefore(sentinel, bar);
    bar.classList.add("dash-bar--collapsible");
    update();
    new window.IntersectionObserver(function (entries) {
      stuck = !entries[entries.length - 1].isIntersecting;
      update();
    }).observe(sentinel);
    phone.addEventListener("change", update);
    window.addEventListener("resize", settle);
    button.addEventListener("click", function () {
      show(button.getAttribute("aria-expanded") !== "true");
    });
    bar.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && bar.classList.contains("dash-bar--open")) {
        show(false);
        button.focus();
      }
    });
  }
  function start() {
    foldFilters();
    draw();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
