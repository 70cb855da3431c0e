/* MAHT-QA review screen: zoom, pan, window/level, landmark overlay, drag and nudge,
   live recomputation (htmx) and keyboard shortcuts. Also ticks SLA countdowns on queues.
   No dependencies besides htmx (vendored). */
(function () {
  "use strict";

  // ---- SLA countdowns (queues and case header) ---------------------------------
  function fmt(ms) {
    var m = Math.floor(Math.abs(ms) / 60000), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (d) return d + " d " + (h % 24) + " h";
    if (h) return h + " h " + (m % 60) + " min";
    return m + " min";
  }
  function tickSla() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due) || el.closest(".readonly-done")) return;
      var left = due - now;
      if (left < 0) {
        el.innerHTML = '<strong class="overdue">overdue by ' + fmt(left) + "</strong>";
        var row = el.closest("tr"); if (row) row.classList.add("is-overdue");
      } else {
        el.textContent = "due in " + fmt(left);
      }
    });
  }
  setInterval(tickSla, 15000);

  // ---- Review screen -------------------------------------------------------------
  var svg = document.getElementById("viewer");
  if (!svg) return;
  var NS = "http://www.w3.org/2000/svg";
  var cols = +svg.dataset.cols, rows = +svg.dataset.rows;
  var editable = svg.dataset.editable === "1";
  var landmarks = JSON.parse(document.getElementById("landmarks-data").textContent);
  var original = landmarks.map(function (l) { return { x: l.x, y: l.y }; });
  var layer = document.getElementById("landmarks");
  var input = document.getElementById("landmarks-input");
  var view = { x: 0, y: 0, w: cols, h: rows };
  var selected = -1;

  function colour(lm) {
    if (lm.confidence === null || lm.confidence === undefined) return "#3b82f6"; // moved by a person
    if (lm.confidence >= 0.8) return "#16a34a";
    if (lm.confidence >= 0.5) return "#f59e0b";
    return "#dc2626";
  }
  function scale() { // image pixels per screen pixel
    var r = svg.getBoundingClientRect();
    return Math.max(view.w / (r.width || 1), view.h / (r.height || 1));
  }
  function applyView() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); draw(); }

  function draw() {
    var s = scale();
    layer.innerHTML = "";
    landmarks.forEach(function (lm, i) {
      var g = document.createElementNS(NS, "g");
      g.setAttribute("class", "lm" + (i === selected ? " selected" : ""));
      g.setAttribute("data-abbr", lm.abbreviation);
      g.setAttribute("data-index", i);
      var c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", lm.x); c.setAttribute("cy", lm.y); c.setAttribute("r", 7 * s);
      c.setAttribute("fill", colour(lm)); c.setAttribute("fill-opacity", "0.45");
      c.setAttribute("stroke", i === selected ? "#fff" : colour(lm)); c.setAttribute("stroke-width", 2 * s);
      var t = document.createElementNS(NS, "text");
      t.setAttribute("x", lm.x + 10 * s); t.setAttribute("y", lm.y - 10 * s);
      t.setAttribute("font-size", 14 * s); t.setAttribute("fill", colour(lm));
      t.setAttribute("stroke", "#000"); t.setAttribute("stroke-width", 0.4 * s);
      var conf = lm.confidence === null || lm.confidence === undefined ? "moved" : lm.confidence.toFixed(2);
      t.textContent = lm.abbreviation + " " + conf;
      g.appendChild(c); g.appendChild(t); layer.appendChild(g);
    });
  }

  function toImage(evt) {
    var pt = svg.createSVGPoint(); pt.x = evt.clientX; pt.y = evt.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function moved() {
    return landmarks.some(function (l, i) {
      return Math.abs(l.x - original[i].x) > 0.01 || Math.abs(l.y - original[i].y) > 0.01;
    });
  }
  function sync() {
    if (input) input.value = JSON.stringify(landmarks.map(function (l) {
      return { abbreviation: l.abbreviation, x: l.x, y: l.y };
    }));
    var note = document.getElementById("moved-note"); if (note) note.hidden = !moved();
    var btn = document.getElementById("btn-accept");
    if (btn) btn.firstChild.nodeValue = moved() ? "Correct and accept " : "Accept ";
    landmarks.forEach(function (l) {
      var row = document.querySelector('#landmark-table tr[data-abbr="' + l.abbreviation + '"]');
      if (!row) return;
      row.querySelector(".xy").textContent = l.x.toFixed(1) + ", " + l.y.toFixed(1);
      row.querySelector(".conf").textContent = l.confidence == null ? "moved" : l.confidence.toFixed(2);
      row.classList.toggle("selected", landmarks[selected] === l);
    });
  }
  var timer = null;
  function recompute() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!window.htmx || !input) return;
      var token = document.querySelector("#decide-form [name=csrfmiddlewaretoken]").value;
      htmx.ajax("POST", svg.dataset.recomputeUrl, {
        target: "#analysis", swap: "outerHTML",
        values: { landmarks: input.value, csrfmiddlewaretoken: token }
      });
    }, 250);
  }
  function moveTo(i, x, y) {
    var lm = landmarks[i];
    lm.x = Math.round(clamp(x, 0, cols) * 100) / 100;
    lm.y = Math.round(clamp(y, 0, rows) * 100) / 100;
    lm.confidence = moved1(i) ? null : lm._conf;
    draw(); sync();
  }
  function moved1(i) {
    return Math.abs(landmarks[i].x - original[i].x) > 0.01 || Math.abs(landmarks[i].y - original[i].y) > 0.01;
  }
  landmarks.forEach(function (l) { l._conf = l.confidence; });
  function select(i) { selected = i; draw(); sync(); }

  // pointer: drag a landmark or pan the image
  var drag = null;
  svg.addEventListener("pointerdown", function (evt) {
    var g = evt.target.closest && evt.target.closest("g.lm");
    var p = toImage(evt);
    if (g && editable) {
      var i = +g.getAttribute("data-index"); select(i);
      drag = { kind: "lm", i: i, dx: landmarks[i].x - p.x, dy: landmarks[i].y - p.y };
    } else {
      drag = { kind: "pan", sx: evt.clientX, sy: evt.clientY, vx: view.x, vy: view.y, s: scale() };
    }
    svg.setPointerCapture(evt.pointerId); evt.preventDefault();
  });
  svg.addEventListener("pointermove", function (evt) {
    if (!drag) return;
    if (drag.kind === "lm") {
      var p = toImage(evt); moveTo(drag.i, p.x + drag.dx, p.y + drag.dy);
    } else {
      view.x = drag.vx - (evt.clientX - drag.sx) * drag.s;
      view.y = drag.vy - (evt.clientY - drag.sy) * drag.s; applyView();
    }
  });
  function endDrag() { if (drag && drag.kind === "lm") recompute(); drag = null; }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  function zoom(f, cx, cy) {
    cx = cx === undefined ? view.x + view.w / 2 : cx; cy = cy === undefined ? view.y + view.h / 2 : cy;
    var w = clamp(view.w / f, 20, cols * 4), h = w * view.h / view.w;
    view.x = cx - (cx - view.x) * w / view.w; view.y = cy - (cy - view.y) * h / view.h;
    view.w = w; view.h = h; applyView();
  }
  function fit() { view = { x: 0, y: 0, w: cols, h: rows }; applyView(); }
  function full() { // one image pixel per screen pixel
    var r = svg.getBoundingClientRect(), cx = view.x + view.w / 2, cy = view.y + view.h / 2;
    view = { w: r.width, h: r.height, x: cx - r.width / 2, y: cy - r.height / 2 }; applyView();
  }
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault(); var p = toImage(evt); zoom(evt.deltaY < 0 ? 1.2 : 1 / 1.2, p.x, p.y);
  }, { passive: false });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.dataset.zoom;
      if (z === "in") zoom(1.25); else if (z === "out") zoom(0.8); else if (z === "fit") fit(); else full();
    });
  });

  // window / level through the SVG filter (8-bit PNG, linear ramp)
  var ww = document.getElementById("wl-window"), wl = document.getElementById("wl-level");
  function applyWL() {
    var w = Math.max(1, +ww.value) / 255, l = +wl.value / 255;
    var slope = 1 / w, intercept = -(l - w / 2) / w;
    document.querySelectorAll("#wl feFuncR, #wl feFuncG, #wl feFuncB").forEach(function (f) {
      f.setAttribute("slope", slope.toFixed(4)); f.setAttribute("intercept", intercept.toFixed(4));
    });
  }
  function resetWL() { ww.value = 255; wl.value = 128; applyWL(); }
  ww.addEventListener("input", applyWL); wl.addEventListener("input", applyWL);
  document.querySelector("[data-wl=reset]").addEventListener("click", resetWL);
  document.querySelectorAll("[data-select]").forEach(function (b) {
    b.addEventListener("click", function () {
      select(landmarks.findIndex(function (l) { return l.abbreviation === b.dataset.select; }));
    });
  });

  // keyboard
  var form = document.getElementById("decide-form"), reason = document.getElementById("reason");
  var pending = null;
  function submit(action) {
    if (!form) return;
    var b = document.getElementById("btn-" + action);
    if (form.requestSubmit) form.requestSubmit(b); else b.click();
  }
  function ask(action) {
    pending = action;
    reason.focus();
    reason.placeholder = (action === "reject" ? "Why is the image unusable?" : "Why escalate?") +
      " Ctrl+Enter sends.";
  }
  if (reason) reason.addEventListener("keydown", function (evt) {
    if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey)) {
      evt.preventDefault(); if (reason.value.trim()) submit(pending || "escalate");
    } else if (evt.key === "Escape") { reason.blur(); }
  });
  document.addEventListener("keydown", function (evt) {
    var tag = (evt.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "input" || tag === "select" || evt.altKey || evt.ctrlKey || evt.metaKey) return;
    var k = evt.key, step = evt.shiftKey ? 10 : 1;
    var arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (arrows[k] && selected >= 0 && editable) {
      evt.preventDefault();
      moveTo(selected, landmarks[selected].x + arrows[k][0], landmarks[selected].y + arrows[k][1]);
      recompute(); return;
    }
    if (/^[1-7]$/.test(k)) { select(+k - 1); return; }
    if (k === "Tab" && document.activeElement === svg) {
      evt.preventDefault(); select((selected + (evt.shiftKey ? landmarks.length - 1 : 1)) % landmarks.length); return;
    }
    if (k === "+" || k === "=") zoom(1.25);
    else if (k === "-") zoom(0.8);
    else if (k === "0") fit();
    else if (k === "w" || k === "W") resetWL();
    else if (k === "Escape") select(-1);
    else if (!editable) return;
    else if (k === "a" || k === "A") submit("accept");
    // preventDefault: ask() focuses the reason box, which must not receive the letter.
    else if (k === "r" || k === "R") { evt.preventDefault(); if (reason.value.trim()) submit("reject"); else ask("reject"); }
    else if (k === "e" || k === "E") { evt.preventDefault(); if (reason.value.trim()) submit("escalate"); else ask("escalate"); }
  });
  if (form) form.addEventListener("submit", function (evt) {
    var action = evt.submitter && evt.submitter.value;
    if ((action === "reject" || action === "escalate") && !reason.value.trim()) {
      evt.preventDefault(); ask(action);
    }
  });

  window.addEventListener("resize", draw);
  draw(); sync(); applyWL();
})();
