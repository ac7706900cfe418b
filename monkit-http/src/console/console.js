// The console's behaviour: sorting, filtering, refreshing from the JSON pages, tracing the
// next call in place. The page works without it as a plain table.
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

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  // Three significant digits at most, no trailing zeros (as the server formats them).
  function sig3(v) {
    var a = Math.abs(v);
    var t = v.toFixed(a >= 100 || a === 0 ? 0 : a >= 10 ? 1 : 2);
    if (t.indexOf(".") >= 0) t = t.replace(/0+$/, "").replace(/\.$/, "");
    return t;
  }
  function fmtNs(ns) {
    if (ns >= 1e9) return sig3(ns / 1e9) + " s";
    if (ns >= 1e6) return sig3(ns / 1e6) + " ms";
    if (ns >= 1e3) return sig3(ns / 1e3) + " µs";
    return sig3(ns) + " ns";
  }
  function tagsText(tags) {
    return Object.keys(tags || {}).map(function (k) { return k + "=" + tags[k]; }).join(", ");
  }
  function reEscape(s) {
    return s.replace(/[\\.+*?()|[\]{}^$#&\-~]/g, "\\$&");
  }
  function traceHref(full) {
    return "/trace/svg?regex=" + encodeURIComponent("^" + reEscape(full) + "$") +
      "&timeout=" + encodeURIComponent(traceTimeout.value);
  }
  function cell(v, text) {
    if (v === undefined || v === null) return '<td class="n" data-v="">–</td>';
    return '<td class="n" data-v="' + v + '">' + esc(text(v)) + "</td>";
  }
  function errorsText(f) {
    var kinds = Object.keys(f.errors || {}).sort(function (a, b) {
      return f.errors[b] - f.errors[a] || (a < b ? -1 : a > b ? 1 : 0);
    });
    var parts = kinds.map(function (k) { return k + " " + f.errors[k]; });
    if (f.panics > 0) parts.push("panic " + f.panics);
    return parts.length ? parts.join(" · ") : "0";
  }
  function nameList(ids, names, entry) {
    var shownNames = ids.map(function (i) { return names[i]; }).filter(Boolean).sort();
    var out = entry ? "<li><em>(entry point)</em></li>" : "";
    if (!shownNames.length && !entry) out += "<li><em>none seen</em></li>";
    shownNames.forEach(function (n) { out += "<li>" + esc(n) + "</li>"; });
    return out;
  }
  function q(times, key) {
    return times && times.quantiles ? times.quantiles[key] : undefined;
  }
  function rowsHtml(funcs, open) {
    var names = {}, callees = {};
    funcs.forEach(function (f) { names[f.id] = f.full_name; });
    funcs.forEach(function (f) {
      (f.parent_ids || []).forEach(function (p) { (callees[p] = callees[p] || []).push(f.id); });
    });
    return funcs.map(function (f) {
      var failed = (f.errors_total || 0) + (f.panics || 0);
      var h = '<tr data-id="' + f.id + '" data-full="' + esc(f.full_name) + '"><td class="name"><details' +
        (open[f.id] ? " open" : "") + "><summary>" + esc(f.name) + '</summary><div class="detail"><h3>Called by</h3><ul>' +
        nameList(f.parent_ids || [], names, f.entry) + "</ul><h3>Calls</h3><ul>" +
        nameList(callees[f.id] || [], names, false) + '</ul><p><a class="trace" href="' +
        esc(traceHref(f.full_name)) + '">Trace next call</a> (waits up to ' + esc(traceTimeout.value) +
        ")</p></div></details></td>" +
        '<td class="scope">' + esc(f.package) + '</td><td class="tags">' + esc(tagsText(f.tags)) + "</td>" +
        cell(f.calls_per_second, sig3) +
        cell(f.current, String) + cell(f.highwater, String) +
        '<td class="errors' + (failed > 0 ? " bad" : "") + '" data-v="' + failed + '">' + esc(errorsText(f)) + "</td>";
      ["success_times", "failure_times"].forEach(function (t) {
        ["0.50", "0.90", "0.99"].forEach(function (k) { h += cell(q(f[t], k), fmtNs); });
      });
      return h + "</tr>";
    }).join("\n");
  }

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

  // The running spans, longest-running first; collapsed subtrees stay collapsed.
  function psHtml(spans, closed) {
    spans = spans.slice().sort(function (a, b) { return b.elapsed_ns - a.elapsed_ns; });
    return "<ul>" + spans.map(function (s) {
      var f = s.func;
      var tags = f ? tagsText(f.tags) : "";
      var name = f ? f.scope + "." + f.name + (tags ? "{" + tags + "}" : "") : "(unknown function)";
      var label = '<span class="fn">' + esc(name) + '</span> <span class="el">' + esc(fmtNs(s.elapsed_ns)) + "</span>";
      if (s.orphaned) label += ' <span class="tag">orphaned</span>';
      if (s.remote_parent) label += ' <span class="tag">remote parent</span>';
      (s.annotations || []).forEach(function (a) {
        label += ' <span class="note">' + esc(a[0]) + "=" + esc(a[1]) + "</span>";
      });
      if (s.children && s.children.length) {
        return '<li data-id="' + esc(s.id) + '"><details' + (closed[s.id] ? "" : " open") + "><summary>" +
          label + "</summary>" + psHtml(s.children, closed) + "</details></li>";
      }
      return '<li data-id="' + esc(s.id) + '" class="leaf">' + label + "</li>";
    }).join("") + "</ul>";
  }
  function countSpans(spans) {
    return spans.reduce(function (n, s) { return n + 1 + countSpans(s.children || []); }, 0);
  }

  var refreshing = false;
  function refresh() {
    // A slow server (a big registry) never gets a second refresh on top of the first.
    if (document.hidden || refreshing) return;
    refreshing = true;
    Promise.all([fetch("/funcs/json"), fetch("/ps/json")]).then(function (rs) {
      rs.forEach(function (r) { if (!r.ok) throw new Error(r.url + ": " + r.status); });
      return Promise.all(rs.map(function (r) { return r.json(); }));
    }).then(function (pages) {
      var funcs = pages[0], spans = pages[1];
      var open = {};
      Array.prototype.forEach.call(tbody.querySelectorAll("tr"), function (r) {
        var d = r.querySelector("details");
        if (d && d.open) open[r.getAttribute("data-id")] = true;
      });
      tbody.innerHTML = rowsHtml(funcs, open);
      apply();
      var closed = {};
      Array.prototype.forEach.call(psBox.querySelectorAll("li > details:not([open])"), function (d) {
        closed[d.parentNode.getAttribute("data-id")] = true;
      });
      psBox.innerHTML = spans.length ? psHtml(spans, closed) : "<p><em>No spans running.</em></p>";
      status.textContent = funcs.length + " functions, " + countSpans(spans) + " spans running · updated " +
        new Date().toLocaleTimeString();
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
  function startTrace(full) {
    if (tracing) tracing.abort();
    var ctl = new AbortController();
    tracing = ctl;
    traceBox.hidden = false;
    traceCancel.disabled = false;
    traceView.textContent = "";
    traceStatus.textContent = "Waiting up to " + traceTimeout.value + " for the next call of " + full + "…";
    traceBox.scrollIntoView({ block: "nearest" });
    fetch(traceHref(full), { signal: ctl.signal }).then(function (r) {
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
      traceView.appendChild(document.importNode(svg, true));
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
    startTrace(a.closest("tr").getAttribute("data-full"));
  });

  apply();
  setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
})();
