// Survey page enhancements; the page works fully without them.
(function () {
  "use strict";
  // A live character count under each free-text answer.
  document.querySelectorAll("textarea[data-counter]").forEach(function (area) {
    var counter = document.getElementById(area.getAttribute("data-counter"));
    if (!counter) { return; }
    var template = counter.getAttribute("data-template");
    var limit = parseInt(area.getAttribute("maxlength"), 10) || 0;
    function update() {
      counter.textContent = template.replace("{count}", area.value.length);
      counter.classList.toggle("counter--near", limit > 0 && area.value.length > limit * 0.9);
    }
    counter.hidden = false;
    area.addEventListener("input", update);
    update();
  });
  // After a refused submit, take keyboard and screen-reader users to the list of problems.
  var summary = document.getElementById("form-errors");
  if (summary) { summary.focus(); }
})();
