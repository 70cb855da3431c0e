/* MAHT-QA review screen: fit-to-viewport viewer with progressive loading, zoom, pan,
   window/level, crosshair landmarks with de-overlapped labels, AI ghosts, undo/redo,
   S-N / N-A / N-B tracing, live recomputation (htmx) and keyboard-first decisions.
   Also ticks SLA countdowns on queues. No dependencies besides htmx (vendored). */
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
  var sr = parseFloat(svg.dataset.spacingRow) || 1, sc = parseFloat(svg.dataset.spacingCol) || 1;
  var editable = svg.dataset.editable === "1";
  var landmarks = JSON.parse(document.getElementById("landmarks-data").textContent);
  landmarks.forEach(function (l) { l.ai = { x: l.x, y: l.y }; l.aiConf = l.confidence; });
  var layer = document.getElementById("landmarks"), tracing = document.getElementById("tracing");
  var input = document.getElementById("landmarks-input");
  var view = { x: 0, y: 0, w: cols, h: rows };
  var selected = -1, zoomedTo = -1, showTracing = true;
  var history = [], future = [];

  // The viewer takes the image's shape (no black bars) and the largest size that fits.
  var box = svg.parentNode, wrap = box.parentNode, layout = wrap.parentNode;
  function fitViewer() {
    var narrow = window.matchMedia("(max-width: 60rem)").matches;
    var availW = narrow ? layout.clientWidth : layout.clientWidth * 0.68;
    var availH = narrow ? window.innerHeight * 0.8 : box.clientHeight;
    var w = Math.max(160, Math.min(availW, availH * cols / rows));
    svg.style.width = w + "px"; svg.style.height = w * rows / cols + "px";
    wrap.style.width = w + "px";
  }
  fitViewer();
  if (window.ResizeObserver) new ResizeObserver(function () { fitViewer(); draw(); }).observe(box);

  // progressive image: the preview first, then the full resolution for zoom
  var img = document.getElementById("radiograph"), loading = document.getElementById("image-loading");
  function loaded(stage, text) {
    svg.dataset.loaded = stage;
    if (loading) { loading.textContent = text; loading.hidden = !text; }
  }
  img.addEventListener("load", function onPreview() {
    img.removeEventListener("load", onPreview);
    loaded("preview", "Loading full resolution…");
    var full = new Image();
    full.onload = function () { img.setAttribute("href", svg.dataset.full); loaded("full", ""); };
    full.onerror = function () { loaded("preview", "Full resolution unavailable: showing the preview."); };
    full.src = svg.dataset.full;
  });
  img.addEventListener("error", function () { loaded("error", "The image could not be loaded."); });
  img.setAttribute("href", svg.dataset.preview);

  function colour(conf) {
    if (conf === null || conf === undefined) return "#60a5fa";
    if (conf >= 0.8) return "#16a34a";
    if (conf >= 0.5) return "#f59e0b";
    return "#dc2626";
  }
  function isMoved(l) { return Math.abs(l.x - l.ai.x) > 0.01 || Math.abs(l.y - l.ai.y) > 0.01; }
  function scale() { // image pixels per screen pixel
    var r = svg.getBoundingClientRect();
    return Math.max(view.w / (r.width || 1), view.h / (r.height || 1));
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }
  function applyView() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); draw(); }
  function byAbbr(a) { return landmarks.filter(function (l) { return l.abbreviation === a; })[0]; }

  // angle at vertex v from u to w, in degrees, in millimetres (anisotropic spacing)
  function angle(v, u, w) {
    var ax = (u.x - v.x) * sc, ay = (u.y - v.y) * sr, bx = (w.x - v.x) * sc, by = (w.y - v.y) * sr;
    var c = (ax * bx + ay * by) / (Math.hypot(ax, ay) * Math.hypot(bx, by) || 1);
    return Math.acos(Math.max(-1, Math.min(1, c))) * 180 / Math.PI;
  }
  function drawTracing(s) {
    tracing.innerHTML = "";
    var S = byAbbr("S"), N = byAbbr("N"), A = byAbbr("A"), B = byAbbr("B");
    if (!showTracing || !S || !N || !A || !B) return;
    function line(p, q, cls) {
      el("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "trace-under", "stroke-width": 4 * s }, tracing);
      el("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "trace " + cls, "stroke-width": 2 * s,
                   "data-line": cls }, tracing);
    }
    line(S, N, "sn"); line(N, A, "na"); line(N, B, "nb");
    var sna = angle(N, S, A), snb = angle(N, S, B);
    var text = el("text", { x: N.x + 18 * s, y: N.y + 44 * s, "font-size": 14 * s, class: "trace-label",
                            "stroke-width": 3 * s, "data-angles": "1" }, tracing);
    [["SNA", sna], ["SNB", snb], ["ANB", sna - snb]].forEach(function (row, i) {
      var t = el("tspan", { x: N.x + 18 * s, dy: i ? 17 * s : 0, "data-angle": row[0] }, text);
      t.textContent = row[0] + " " + row[1].toFixed(1) + "°";
    });
  }

  // label placement: first candidate that overlaps no other label and no marker
  var CANDIDATES = [[14, -10], [14, 20], [-14, -10], [-14, 20], [0, -24], [0, 34], [40, -30],
                    [40, 40], [-40, -30], [-40, 40], [70, 6], [-70, 6], [56, -56], [-56, -56],
                    [56, 66], [-56, 66]];
  function overlap(a, b) {
    return Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) *
           Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  }
  function placeLabels(s, fs) {
    var markers = landmarks.map(function (l) { var r = 11 * s; return [l.x - r, l.y - r, l.x + r, l.y + r]; });
    var placed = [], out = [];
    var order = landmarks.map(function (_, i) { return i; }).sort(function (a, b) { return landmarks[a].y - landmarks[b].y; });
    order.forEach(function (i) {
      var l = landmarks[i], w = labelText(l).length * fs * 0.6, h = fs * 1.05, best = null;
      CANDIDATES.forEach(function (c, n) {
        var ax = l.x + c[0] * s, ay = l.y + c[1] * s, end = c[0] < 0;
        var box = [end ? ax - w : ax, ay - h * 0.8, end ? ax : ax + w, ay + h * 0.2];
        var cost = 0;
        placed.concat(markers).forEach(function (b) { cost += overlap(box, b); });
        if (box[0] < view.x || box[2] > view.x + view.w || box[1] < view.y || box[3] > view.y + view.h) cost += w * h * 0.5;
        cost += n * 1e-6; // prefer the nearer candidates on ties
        if (!best || cost < best.cost) best = { cost: cost, ax: ax, ay: ay, end: end, box: box, far: Math.hypot(c[0], c[1]) > 30 };
      });
      placed.push(best.box); out[i] = best;
    });
    return out;
  }
  function labelText(l) {
    var conf = l.aiConf === null || l.aiConf === undefined ? "" : l.aiConf.toFixed(2);
    return isMoved(l) ? l.abbreviation + " ✎ AI " + conf : l.abbreviation + " " + conf;
  }

  function draw() {
    var s = scale(), fs = 15 * s;
    drawTracing(s);
    layer.innerHTML = "";
    var labels = placeLabels(s, fs);
    landmarks.forEach(function (l, i) {
      var moved = isMoved(l), c = colour(moved ? null : l.aiConf);
      var g = el("g", { class: "lm" + (i === selected ? " selected" : "") + (moved ? " moved" : ""),
                        "data-abbr": l.abbreviation, "data-index": i }, layer);
      if (moved) { // where the AI put it
        el("line", { x1: l.ai.x, y1: l.ai.y, x2: l.x, y2: l.y, class: "ghost-line", "stroke-width": 1.5 * s,
                     "stroke-dasharray": [4 * s, 3 * s].join(" ") }, g);
        el("circle", { cx: l.ai.x, cy: l.ai.y, r: 6 * s, class: "ghost", "stroke-width": 2.5 * s,
                       "stroke-dasharray": [3 * s, 2 * s].join(" "), "data-ghost": l.abbreviation }, g);
      }
      el("circle", { cx: l.x, cy: l.y, r: (i === selected ? 15 : 11) * s, class: "ring", fill: c,
                     "fill-opacity": "0.15", stroke: i === selected ? "#fff" : c,
                     "stroke-width": (i === selected ? 2.5 : 1.5) * s }, g);
      [[1, 0], [-1, 0], [0, 1], [0, -1]].forEach(function (d) { // crosshair with a gap at the point
        var a = { x1: l.x + d[0] * 3 * s, y1: l.y + d[1] * 3 * s, x2: l.x + d[0] * 14 * s, y2: l.y + d[1] * 14 * s };
        el("line", Object.assign({ class: "cross-under", "stroke-width": 3.5 * s }, a), g);
        el("line", Object.assign({ class: "cross", stroke: c, "stroke-width": 1.5 * s }, a), g);
      });
      var p = labels[i];
      if (p.far) el("line", { x1: l.x, y1: l.y, x2: p.end ? p.box[2] : p.box[0], y2: p.ay - fs * 0.3,
                              class: "leader", "stroke-width": 1 * s }, g);
      var t = el("text", { x: p.ax, y: p.ay, "font-size": fs, fill: c, "stroke-width": 3.5 * s,
                           class: "lm-label", "text-anchor": p.end ? "end" : "start" }, g);
      t.textContent = labelText(l);
      el("circle", { cx: l.x, cy: l.y, r: 16 * s, class: "hit" }, g); // generous drag target
    });
  }

  function toImage(evt) {
    var pt = svg.createSVGPoint(); pt.x = evt.clientX; pt.y = evt.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function snapshot() { return landmarks.map(function (l) { return { x: l.x, y: l.y }; }); }
  function restore(snap) { snap.forEach(function (p, i) { landmarks[i].x = p.x; landmarks[i].y = p.y; }); }
  var lastNudge = { i: -1, t: 0 };
  function checkpoint(coalesceKey) {
    var now = Date.now();
    if (coalesceKey !== undefined && lastNudge.i === coalesceKey && now - lastNudge.t < 1000) { lastNudge.t = now; return; }
    lastNudge = { i: coalesceKey === undefined ? -1 : coalesceKey, t: now };
    history.push(snapshot()); future = [];
    if (history.length > 200) history.shift();
  }
  function undo() { if (!history.length) return; future.push(snapshot()); restore(history.pop()); lastNudge.i = -1; changed(); }
  function redo() { if (!future.length) return; history.push(snapshot()); restore(future.pop()); lastNudge.i = -1; changed(); }

  function sync() {
    var any = landmarks.some(isMoved);
    if (input) input.value = JSON.stringify(landmarks.map(function (l) {
      return { abbreviation: l.abbreviation, x: l.x, y: l.y };
    }));
    var note = document.getElementById("moved-note"); if (note) note.hidden = !any;
    var btn = document.getElementById("btn-accept");
    if (btn) btn.firstChild.nodeValue = any ? "Correct, accept & next " : "Accept & next ";
    var u = document.getElementById("btn-undo"), r = document.getElementById("btn-redo");
    if (u) u.disabled = !history.length; if (r) r.disabled = !future.length;
    landmarks.forEach(function (l, i) {
      var row = document.querySelector('#landmark-table tr[data-abbr="' + l.abbreviation + '"]');
      if (!row) return;
      row.querySelector(".xy").textContent = l.x.toFixed(1) + ", " + l.y.toFixed(1);
      var conf = l.aiConf === null || l.aiConf === undefined ? "—" : l.aiConf.toFixed(2);
      row.querySelector(".conf").textContent = isMoved(l) ? "moved (AI " + conf + ")" : conf;
      var reset = row.querySelector("[data-reset]"); if (reset) reset.hidden = !isMoved(l);
      row.classList.toggle("selected", i === selected);
      row.classList.toggle("moved", isMoved(l));
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
  function changed() { draw(); sync(); recompute(); }
  function moveTo(i, x, y) {
    landmarks[i].x = Math.round(clamp(x, 0, cols) * 100) / 100;
    landmarks[i].y = Math.round(clamp(y, 0, rows) * 100) / 100;
    draw(); sync();
  }
  function reset(i) {
    if (i < 0 || !isMoved(landmarks[i])) return;
    checkpoint(); landmarks[i].x = landmarks[i].ai.x; landmarks[i].y = landmarks[i].ai.y; changed();
  }
  function select(i) { selected = i; draw(); sync(); }

  // pointer: drag a landmark or pan the image
  var drag = null;
  svg.addEventListener("pointerdown", function (evt) {
    var g = evt.target.closest && evt.target.closest("g.lm");
    var p = toImage(evt);
    if (g && editable) {
      var i = +g.getAttribute("data-index"); select(i);
      drag = { kind: "lm", i: i, dx: landmarks[i].x - p.x, dy: landmarks[i].y - p.y, started: false };
    } else {
      drag = { kind: "pan", sx: evt.clientX, sy: evt.clientY, vx: view.x, vy: view.y, s: scale() };
    }
    svg.setPointerCapture(evt.pointerId); evt.preventDefault();
  });
  svg.addEventListener("pointermove", function (evt) {
    if (!drag) return;
    if (drag.kind === "lm") {
      if (!drag.started) { checkpoint(); drag.started = true; }
      var p = toImage(evt); moveTo(drag.i, p.x + drag.dx, p.y + drag.dy);
    } else {
      view.x = drag.vx - (evt.clientX - drag.sx) * drag.s;
      view.y = drag.vy - (evt.clientY - drag.sy) * drag.s; applyView();
    }
  });
  function endDrag() { if (drag && drag.kind === "lm" && drag.started) changed(); drag = null; }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  function zoom(f, cx, cy) {
    cx = cx === undefined ? view.x + view.w / 2 : cx; cy = cy === undefined ? view.y + view.h / 2 : cy;
    var w = clamp(view.w / f, 20, cols * 4), h = w * view.h / view.w;
    view.x = cx - (cx - view.x) * w / view.w; view.y = cy - (cy - view.y) * h / view.h;
    view.w = w; view.h = h; zoomedTo = -1; applyView();
  }
  function fit() { view = { x: 0, y: 0, w: cols, h: rows }; zoomedTo = -1; applyView(); }
  function full() { // one image pixel per screen pixel
    var r = svg.getBoundingClientRect(), cx = view.x + view.w / 2, cy = view.y + view.h / 2;
    view = { w: r.width, h: r.height, x: cx - r.width / 2, y: cy - r.height / 2 }; zoomedTo = -1; applyView();
  }
  function zoomToLandmark() {
    if (selected < 0) select(0);
    if (zoomedTo === selected) { fit(); return; }
    var l = landmarks[selected], w = cols / 5, h = rows / 5;
    view = { x: l.x - w / 2, y: l.y - h / 2, w: w, h: h }; zoomedTo = selected; applyView();
  }
  function toggleTracing() {
    showTracing = !showTracing;
    var b = document.getElementById("btn-tracing"); if (b) b.setAttribute("aria-pressed", showTracing);
    draw();
  }
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault(); var p = toImage(evt); zoom(evt.deltaY < 0 ? 1.2 : 1 / 1.2, p.x, p.y);
  }, { passive: false });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.dataset.zoom;
      if (z === "in") zoom(1.25); else if (z === "out") zoom(0.8); else if (z === "fit") fit();
      else if (z === "landmark") zoomToLandmark(); else full();
    });
  });
  document.getElementById("btn-undo").addEventListener("click", undo);
  document.getElementById("btn-redo").addEventListener("click", redo);
  document.getElementById("btn-tracing").addEventListener("click", toggleTracing);

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
  function indexOf(abbr) { return landmarks.findIndex(function (l) { return l.abbreviation === abbr; }); }
  document.querySelectorAll("[data-select]").forEach(function (b) {
    b.addEventListener("click", function () { select(indexOf(b.dataset.select)); });
  });
  document.querySelectorAll("[data-reset]").forEach(function (b) {
    b.addEventListener("click", function () { reset(indexOf(b.dataset.reset)); });
  });

  // decisions: reasons for reject/escalate, a confirmation for urgent or high-finding cases
  var form = document.getElementById("decide-form"), reason = document.getElementById("reason");
  var dialog = document.getElementById("confirm-dialog"), confirmed = document.getElementById("confirmed");
  var pending = null;
  function submit(action) {
    if (!form) return;
    var b = document.getElementById("btn-" + action);
    if (form.requestSubmit) form.requestSubmit(b); else b.click();
  }
  function ask(action) {
    pending = action;
    reason.rows = 3; reason.focus();
    reason.placeholder = (action === "reject" ? "Why is the image unusable?" : "Why escalate?") +
      " Ctrl+Enter sends.";
  }
  if (reason) reason.addEventListener("keydown", function (evt) {
    if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey)) {
      evt.preventDefault(); if (reason.value.trim()) submit(pending || "escalate");
    } else if (evt.key === "Escape") { reason.blur(); }
  });
  if (dialog) dialog.addEventListener("close", function () {
    if (dialog.returnValue === "yes") { confirmed.value = "1"; submit("accept"); }
    svg.focus();
  });
  if (form) form.addEventListener("submit", function (evt) {
    var action = evt.submitter && evt.submitter.value;
    if ((action === "reject" || action === "escalate") && !reason.value.trim()) {
      evt.preventDefault(); ask(action); return;
    }
    if (action === "accept" && form.dataset.confirm && confirmed.value !== "1" && dialog) {
      evt.preventDefault(); dialog.returnValue = ""; dialog.showModal();
    }
  });

  // keyboard
  document.addEventListener("keydown", function (evt) {
    if (dialog && dialog.open) return; // the dialog has its own keys (Enter, Esc)
    var tag = (evt.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "input" || tag === "select") return;
    var k = evt.key;
    if ((evt.ctrlKey || evt.metaKey) && (k === "z" || k === "Z" || k === "y")) {
      if (!editable) return;
      evt.preventDefault(); if (k === "y" || evt.shiftKey) redo(); else undo(); return;
    }
    if (evt.altKey || evt.ctrlKey || evt.metaKey) return;
    var step = evt.shiftKey ? 10 : 1;
    var arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (arrows[k] && selected >= 0 && editable) {
      evt.preventDefault(); checkpoint(selected);
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
    else if (k === "z" || k === "Z") zoomToLandmark();
    else if (k === "t" || k === "T") toggleTracing();
    else if (k === "w" || k === "W") resetWL();
    else if (k === "Escape") select(-1);
    else if (!editable) return;
    else if (k === "Backspace") { evt.preventDefault(); reset(selected); }
    else if (k === "a" || k === "A") submit("accept");
    // preventDefault: ask() focuses the reason box, which must not receive the letter.
    else if (k === "r" || k === "R") { evt.preventDefault(); if (reason.value.trim()) submit("reject"); else ask("reject"); }
    else if (k === "e" || k === "E") { evt.preventDefault(); if (reason.value.trim()) submit("escalate"); else ask("escalate"); }
  });

  window.addEventListener("resize", function () { fitViewer(); draw(); });
  draw(); sync(); applyWL();
})();
