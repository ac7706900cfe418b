// The console's behaviour: sorting, filtering, refreshing with the rows the server renders,
// tracing the next call in place. It writes no markup of its own: the page works without it
// as a plain table.
(function () {
  "use strict";
  var REFRESH_MS = 5000;
  var table = document.getElementById("funcs");
  var tbody = table.tBodies[0];
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var status = document.getElementById("status");
  var psBox = document.getElementById("ps");
  var traceBox = document.getElementById("trace");
  var traceStatus = document.getElementById("trace-status");
  var traceView = document.getElementById("trace-view");
  var traceTimeout = document.getElementById("trace-timeout");
  var traceCancel = document.getElementById("trace-cancel");
  // Leaf header cells in column order (the first row's rowspan cells, then the second row's).
  var heads = [];
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (th.getAttribute("scope") === "col") heads.push(th);
  });
  Array.prototype.forEach.call(table.tHead.rows[1].cells, function (th) { heads.push(th); });
  var sort = { col: 0, dir: 1 };
  var tracing = null;

  // Sorting and filtering: applied after every refresh, so neither is lost.
  function key(row, col) {
    var td = row.cells[col];
    if (col === 0) return row.getAttribute("data-full").toLowerCase();
    if (heads[col].getAttribute("data-type") === "s") return td.textContent.toLowerCase();
    var v = td.getAttribute("data-v");
    return v === "" || v === null ? null : parseFloat(v);
  }
  function apply() {
    var rows = Array.prototype.slice.call(tbody.rows);
    var keyed = rows.map(function (r) { return { r: r, k: key(r, sort.col), n: r.getAttribute("data-full") }; });
    // Ties go by name, so the order is the same whatever order the rows arrived in.
    var byName = function (a, b) { return a.n < b.n ? -1 : a.n > b.n ? 1 : 0; };
    keyed.sort(function (a, b) {
      if (a.k === null || b.k === null) {
        if (a.k === b.k) return byName(a, b);
        return a.k === null ? 1 : -1; // empty cells last either way
      }
      var c = a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      return c * sort.dir || byName(a, b);
    });
    var text = filter.value.trim().toLowerCase();
    var n = 0;
    keyed.forEach(function (e) {
      var hay = (e.r.getAttribute("data-full") + " " + e.r.cells[1].textContent + " " + e.r.cells[2].textContent).toLowerCase();
      e.r.hidden = text !== "" && hay.indexOf(text) < 0;
      if (!e.r.hidden) n++;
      tbody.appendChild(e.r);
    });
    shown.textContent = text === "" ? rows.length + " functions" : n + " of " + rows.length + " functions";
    heads.forEach(function (th, i) {
      if (i === sort.col) th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }
  heads.forEach(function (th, i) {
    var b = document.createElement("button");
    b.type = "button";
    while (th.firstChild) b.appendChild(th.firstChild);
    th.appendChild(b);
    b.addEventListener("click", function () {
      if (sort.col === i) sort.dir = -sort.dir;
      else sort = { col: i, dir: th.getAttribute("data-type") === "s" ? 1 : -1 };
      apply();
    });
  });
  filter.addEventListener("input", apply);
  filter.parentNode.hidden = false;

  var refreshing = false;
  // The server renders the rows and the span tree (/console/fragment, the same markup as the
  // page); the script swaps them in and keeps what the reader opened, closed, sorted and typed.
  function refresh() {
    // A slow server (a big registry) never gets a second refresh on top of the first.
    if (document.hidden || refreshing) return;
    refreshing = true;
    fetch("/console/fragment").then(function (r) {
      if (!r.ok) throw new Error(r.url + ": " + r.status);
      return r.json();
    }).then(function (part) {
      var open = {};
      Array.prototype.forEach.call(tbody.querySelectorAll("tr"), function (r) {
        var d = r.querySelector("details");
        if (d && d.open) open[r.getAttribute("data-id")] = true;
      });
      tbody.innerHTML = part.rows;
      var slo = document.querySelector("#slo tbody");
      if (slo && part.objectives !== undefined) slo.innerHTML = part.objectives;
      Array.prototype.forEach.call(tbody.querySelectorAll("tr"), function (r) {
        var d = r.querySelector("details");
        if (d && open[r.getAttribute("data-id")]) d.open = true;
      });
      apply();
      var closed = {};
      Array.prototype.forEach.call(psBox.querySelectorAll("li > details:not([open])"), function (d) {
        closed[d.parentNode.getAttribute("data-id")] = true;
      });
      psBox.innerHTML = part.running;
      Array.prototype.forEach.call(psBox.querySelectorAll("li > details"), function (d) {
        if (closed[d.parentNode.getAttribute("data-id")]) d.open = false;
      });
      status.textContent = part.status + " · updated " + new Date().toLocaleTimeString();
    }).catch(function (e) {
      status.textContent = "Refresh failed (" + e.message + "); trying again in " + REFRESH_MS / 1000 + " s.";
    }).then(function () { refreshing = false; });
  }

  // Trace next call: arm a watcher through /trace/svg and show the SVG here.
  window.rel = function (evt, on) { // the SVG's own hover handler, which inlining does not run
    var g = evt.currentTarget, id = g.getAttribute("data-id"), p = g.getAttribute("data-parent");
    Array.prototype.forEach.call(traceView.getElementsByTagName("g"), function (e) {
      if (e.getAttribute("data-id") === p || e.getAttribute("data-parent") === id) {
        var r = e.getElementsByTagName("rect")[0];
        var c = r.getAttribute("class").replace(" related", "");
        r.setAttribute("class", on ? c + " related" : c);
      }
    });
  };
  // The row's link names the function; the wait is the one chosen on the page.
  function traceHref(link) {
    var u = new URL(link, window.location.href);
    // A held call answers at once: only a wait for the next call takes a timeout.
    if (u.pathname.indexOf("/trace/recent") !== 0) u.searchParams.set("timeout", traceTimeout.value);
    return u.pathname + u.search;
  }
  // A band's spans, shown or hidden again (the SVG's own handler, which inlining does not run).
  window.band = function (evt) {
    var g = evt.currentTarget, k = g.getAttribute("data-band"), svg = g.ownerSVGElement, show = null;
    Array.prototype.forEach.call(svg.querySelectorAll('g[data-member="' + k + '"]'), function (m) {
      if (show === null) show = m.getAttribute("visibility") === "hidden";
      m.setAttribute("visibility", show ? "visible" : "hidden");
    });
    var vb = svg.viewBox.baseVal, h = svg.getAttribute("data-full-height");
    svg.setAttribute("height", h);
    svg.setAttribute("viewBox", vb.x + " " + vb.y + " " + vb.width + " " + h);
  };
  // Zoom with the wheel around the pointer, pan by dragging: only the SVG's viewBox moves.
  function zoomable(svg) {
    var full = svg.viewBox.baseVal.width, drag = null;
    function show(x, w) {
      var vb = svg.viewBox.baseVal;
      x = Math.min(Math.max(0, x), full - w);
      svg.setAttribute("viewBox", x + " " + vb.y + " " + w + " " + vb.height);
    }
    svg.addEventListener("wheel", function (e) {
      e.preventDefault();
      var vb = svg.viewBox.baseVal, r = svg.getBoundingClientRect();
      var at = vb.x + (e.clientX - r.left) / r.width * vb.width;
      var w = Math.min(full, Math.max(full / 1000, vb.width * (e.deltaY < 0 ? 0.8 : 1.25)));
      show(at - (at - vb.x) * w / vb.width, w);
    }, { passive: false });
    svg.addEventListener("mousedown", function (e) {
      drag = { x: e.clientX, vx: svg.viewBox.baseVal.x };
    });
    window.addEventListener("mouseup", function () { drag = null; });
    svg.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var vb = svg.viewBox.baseVal, r = svg.getBoundingClientRect();
      show(drag.vx - (e.clientX - drag.x) / r.width * vb.width, vb.width);
    });
  }
  function startTrace(full, link) {
    if (tracing) tracing.abort();
    var ctl = new AbortController();
    tracing = ctl;
    traceBox.hidden = false;
    traceCancel.disabled = false;
    traceView.textContent = "";
    traceStatus.textContent = link.indexOf("/trace/recent") === 0
      ? "Opening a held call of " + full + "…"
      : "Waiting up to " + traceTimeout.value + " for the next call of " + full + "…";
    traceBox.scrollIntoView({ block: "nearest" });
    fetch(traceHref(link), { signal: ctl.signal }).then(function (r) {
      return r.text().then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
      if (tracing !== ctl) return;
      tracing = null;
      traceCancel.disabled = true;
      if (!res.r.ok) {
        traceStatus.textContent = "No trace of " + full + " (" + res.r.status + ").";
        var pre = document.createElement("pre");
        pre.textContent = res.body;
        traceView.appendChild(pre);
        return;
      }
      var doc = new DOMParser().parseFromString(res.body, "image/svg+xml");
      var svg = doc.documentElement;
      if (svg.nodeName !== "svg") throw new Error("the trace page did not answer with SVG");
      var shown = document.importNode(svg, true);
      traceView.appendChild(shown);
      zoomable(shown);
      traceStatus.textContent = "Trace of " + full + ", captured " + new Date().toLocaleTimeString() + ".";
    }).catch(function (e) {
      if (tracing === ctl) { tracing = null; traceCancel.disabled = true; }
      traceStatus.textContent = e.name === "AbortError" ? "Canceled." : "Trace failed: " + e.message;
    });
  }
  traceCancel.addEventListener("click", function () {
    if (tracing) { var t = tracing; tracing = null; t.abort(); traceCancel.disabled = true; traceStatus.textContent = "Canceled."; }
  });
  tbody.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a.trace") : null;
    if (!a) return;
    e.preventDefault();
    startTrace(a.closest("tr").getAttribute("data-full"), a.getAttribute("href"));
  });

  apply();
  setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
})();
