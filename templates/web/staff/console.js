// The staff console's script, served from our own origin (the console's CSP allows no inline
// script). It only helps: every action is a plain form that works without it.
//  - Drag and drop reorders the articles: dropping one fills the page's move form (article,
//    position) and submits it, as the Up and Down buttons do.
//  - A send under way: its progress panel asks the staff API for the send's progress every
//    second and shows it; when the send stops (finished, cancelled) the page reloads.
"use strict";

(function () {
  function reorder() {
    var list = document.getElementById("items");
    var form = document.getElementById("move-form");
    if (!list || !form) {
      return;
    }
    var dragged = null;
    function clear() {
      list.querySelectorAll(".drop-before, .drop-after").forEach(function (el) {
        el.classList.remove("drop-before", "drop-after");
      });
    }
    list.addEventListener("dragstart", function (event) {
      var item = event.target.closest ? event.target.closest("li.item") : null;
      if (!item) {
        return;
      }
      dragged = item;
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.dataset.article);
    });
    list.addEventListener("dragend", function () {
      if (dragged) {
        dragged.classList.remove("dragging");
      }
      dragged = null;
      clear();
    });
    list.addEventListener("dragover", function (event) {
      var target = event.target.closest ? event.target.closest("li.item") : null;
      if (!dragged || !target || target === dragged) {
        return;
      }
      event.preventDefault();
      clear();
      var before = Number(target.dataset.position) < Number(dragged.dataset.position);
      target.classList.add(before ? "drop-before" : "drop-after");
    });
    list.addEventListener("drop", function (event) {
      var target = event.target.closest ? event.target.closest("li.item") : null;
      if (!dragged || !target || target === dragged) {
        return;
      }
      event.preventDefault();
      form.elements.article.value = dragged.dataset.article;
      form.elements.position.value = target.dataset.position;
      form.submit();
    });
  }

  function progress() {
    var panel = document.querySelector("[data-progress-url]");
    if (!panel) {
      return;
    }
    var url = panel.getAttribute("data-progress-url");
    var bar = panel.querySelector("progress");
    var delay = 1000;
    function set(name, value) {
      var el = panel.querySelector('[data-field="' + name + '"]');
      if (el) {
        el.textContent = value;
      }
    }
    function number(n) {
      return Number(n || 0).toLocaleString("en");
    }
    function show(s) {
      bar.value = s.percent;
      set("percent", s.percent);
      set("state", s.state);
      set("rate", Number(s.rate_per_s || 0).toFixed(1));
      set("eta", s.eta_s === null ? "\u2014" : Math.round(s.eta_s) + " s");
      set("remaining", number(s.remaining));
      set("uncertain", number(s.uncertain));
      panel.querySelectorAll("[data-count]").forEach(function (cell) {
        cell.textContent = number(s.counts[cell.getAttribute("data-count")]);
      });
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) {
          if (!answer.ok) {
            throw new Error("HTTP " + answer.status);
          }
          return answer.json();
        })
        .then(function (s) {
          show(s);
          delay = 1000;
          if (s.state !== "sending" || s.done) {
            // Finished or cancelled: the page shows what follows (the CSV, resume).
            window.setTimeout(function () { window.location.reload(); }, 1500);
            return;
          }
          window.setTimeout(poll, delay);
        })
        .catch(function () {
          delay = Math.min(delay * 2, 30000);
          window.setTimeout(poll, delay);
        });
    }
    window.setTimeout(poll, delay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    reorder();
    progress();
  });
})();
