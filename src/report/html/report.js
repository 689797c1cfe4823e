// fixbench report: filters and drill-downs. The page is complete without this script; it
// reads the JSON blocks only when a cell or a trial is opened, and keeps the view in the URL
// fragment (failures=1&different=1&q=…&cell=RUN/P/G&trial=RUN/P/A/R).
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var parsed = {};
  function block(id) {
    if (!(id in parsed)) {
      var node = byId(id);
      parsed[id] = node ? JSON.parse(node.textContent) : null;
    }
    return parsed[id];
  }
  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(v, digits) { return v === null || v === undefined ? "?" : Number(v).toFixed(digits); }
  function encPath(s) { return s.split("/").map(encodeURIComponent).join("/"); }

  // --- the fragment ---
  function readHash() {
    var state = { failures: false, different: false, q: "", cell: "", trial: "" };
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      var key = i < 0 ? kv : kv.slice(0, i);
      var value = i < 0 ? "" : kv.slice(i + 1).replace(/\+/g, " ");
      try { value = decodeURIComponent(value); } catch (e) { /* kept as written */ }
      if (key === "failures" || key === "different") state[key] = value === "1";
      else if (key === "q" || key === "cell" || key === "trial") state[key] = value;
    });
    return state;
  }
  function hashOf(state) {
    var parts = [];
    if (state.failures) parts.push("failures=1");
    if (state.different) parts.push("different=1");
    if (state.q) parts.push("q=" + encodeURIComponent(state.q));
    if (state.cell) parts.push("cell=" + encPath(state.cell));
    if (state.trial) parts.push("trial=" + encPath(state.trial));
    return "#" + parts.join("&");
  }
  function go(change, replace) {
    var state = readHash();
    Object.keys(change).forEach(function (k) { state[k] = change[k]; });
    var h = hashOf(state);
    if (h === location.hash || (h === "#" && !location.hash)) return;
    if (replace) location.replace(h); else location.hash = h;
  }

  // --- the index: what every trial is, for the filters and the cell lists ---
  var lowered = null;
  function index() { return block("index"); }
  function trialKey(ix, t) { return ix.runs[t.run] + "/" + t.problem + "/" + t.agent + "/" + t.repeat; }
  function matching(q) {
    var ix = index();
    if (!lowered) lowered = ix.strings.map(function (s) { return s.toLowerCase(); });
    var hit = {};
    lowered.forEach(function (s, i) { if (s.indexOf(q) >= 0) hit[i] = true; });
    return function (t) {
      if (trialKey(ix, t).toLowerCase().indexOf(q) >= 0) return true;
      for (var i = 0; i < t.text.length; i++) if (hit[t.text[i]]) return true;
      return false;
    };
  }
  function splitCell(cell) {
    var a = cell.indexOf("/"), b = cell.indexOf("/", a + 1);
    if (a < 0 || b < 0) return null;
    return { run: cell.slice(0, a), problem: cell.slice(a + 1, b), group: cell.slice(b + 1) };
  }

  // --- the matrix filters ---
  function filterMatrix(state) {
    var q = state.q.trim().toLowerCase();
    var cellsWithHits = null;
    if (q) {
      var ix = index(), match = matching(q);
      cellsWithHits = {};
      ix.trials.forEach(function (t) {
        if (match(t)) cellsWithHits[ix.runs[t.run] + "\n" + t.problem + "\n" + t.group] = true;
      });
    }
    var rows = document.querySelectorAll("#matrix tbody tr");
    for (var r = 0; r < rows.length; r++) {
      var cells = rows[r].querySelectorAll("td.cell"), shown = 0;
      for (var c = 0; c < cells.length; c++) {
        var d = cells[c].dataset;
        var hide = (state.failures && d.fail !== "1") || (state.different && d.differs !== "1") ||
          (cellsWithHits !== null && !cellsWithHits[d.run + "\n" + d.problem + "\n" + d.group]);
        cells[c].hidden = hide;
        if (!hide) shown++;
      }
      rows[r].hidden = shown === 0;
    }
  }

  // --- a cell's trials ---
  function showCell(state) {
    var section = byId("trials");
    var cell = state.cell ? splitCell(state.cell) : null;
    if (!cell) { section.hidden = true; section.textContent = ""; return; }
    var ix = index();
    var q = state.q.trim().toLowerCase(), match = q ? matching(q) : null;
    var mine = ix.trials.filter(function (t) {
      return ix.runs[t.run] === cell.run && t.problem === cell.problem && t.group === cell.group;
    });
    section.textContent = "";
    var ok = mine.filter(function (t) { return t.resolved; }).length;
    add(section, node("h2", null, cell.run + " · " + cell.problem + " · " + cell.group + ": " + ok + "/" + mine.length + " resolved"));
    if (!mine.length) add(section, node("p", "not-recorded", "no trial of this cell in the report"));
    mine.forEach(function (t) {
      var key = trialKey(ix, t);
      var a = add(section, node("a", "trial-link " + (t.resolved ? "ok" : "bad"),
        t.problem + "/" + t.agent + "/" + t.repeat + " — " + t.passed + "/" + t.total + " tests"));
      a.dataset.trial = key;
      a.href = "#trial=" + encPath(key);
      a.hidden = (state.failures && t.resolved) || (match !== null && !match(t));
    });
    section.hidden = false;
  }

  // --- a trial ---
  function excerpt(parent, cls, what, e) {
    add(parent, node("h3", null, what));
    var pre = add(parent, node("pre", cls));
    if (e.state !== "ok") { pre.appendChild(node("span", "not-recorded", what + ": " + e.state)); return; }
    pre.appendChild(document.createTextNode(e.head));
    if (e.cut) pre.appendChild(node("span", "cut", "\n… " + e.cut + " bytes cut of " + e.bytes + " …\n"));
    if (e.tail) pre.appendChild(document.createTextNode(e.tail));
    if (!e.bytes) pre.appendChild(node("span", "not-recorded", "(empty)"));
  }
  function diff(parent, e) {
    add(parent, node("h3", null, "diff"));
    var box = add(parent, node("div", "diff"));
    if (e.state !== "ok") { add(box, node("p", "not-recorded", "diff: " + e.state)); return; }
    if (!e.head) { add(box, node("p", "not-recorded", "no change")); return; }
    var pre = add(box, node("pre"));
    e.head.replace(/\n$/, "").split("\n").forEach(function (line) {
      var cls = "diff-ctx";
      if (/^@@/.test(line)) cls = "diff-hunk";
      else if (/^\+/.test(line) && !/^\+\+\+ /.test(line)) cls = "diff-add";
      else if (/^-/.test(line) && !/^--- /.test(line)) cls = "diff-del";
      add(pre, node("span", cls, line));
    });
    if (e.cut) add(box, node("p", "cut", e.cut + " more bytes of the diff not shown"));
  }
  function testList(parent, cls, title, names) {
    add(parent, node("h3", null, title + " (" + names.length + ")"));
    var ul = add(parent, node("ul", cls));
    if (!names.length) add(ul, node("li", "not-recorded", "none"));
    names.forEach(function (n) { add(ul, node("li", null, n)); });
  }
  var R = { offset: 0, total: 1, queue: 2, ttft: 3, promptN: 4, promptMs: 5, predN: 6, predMs: 7, cacheN: 8, slot: 9, conv: 10, turn: 11, status: 12 };
  function figures(r, error) {
    var parts = [];
    parts.push("at " + num(r[R.offset] / 1000, 1) + " s");
    if (r[R.ttft] !== null) parts.push("TTFT " + num(r[R.ttft], 0) + " ms");
    if (r[R.promptN] !== null) parts.push("prefill " + r[R.promptN] + " tok / " + num(r[R.promptMs], 0) + " ms" +
      (r[R.promptMs] ? " (" + num(r[R.promptN] / r[R.promptMs] * 1000, 0) + " tok/s)" : ""));
    if (r[R.predN] !== null) parts.push("decode " + r[R.predN] + " tok / " + num(r[R.predMs], 0) + " ms" +
      (r[R.predMs] ? " (" + num(r[R.predN] / r[R.predMs] * 1000, 1) + " tok/s)" : ""));
    if (r[R.cacheN] !== null) parts.push("cached " + r[R.cacheN]);
    if (r[R.slot] !== null) parts.push("slot " + r[R.slot]);
    if (r[R.queue] !== null) parts.push("queue " + num(r[R.queue], 0) + " ms");
    parts.push("total " + num(r[R.total], 0) + " ms");
    if (r[R.status] !== 200) parts.push("HTTP " + r[R.status]);
    if (error) parts.push("error: " + error);
    return parts.join(" · ");
  }
  function timeline(parent, reqs) {
    add(parent, node("h3", null, "requests (" + reqs.length + ")"));
    if (!reqs.length) { add(parent, node("p", "not-recorded", "no request recorded")); return; }
    var lanes = [];
    reqs.forEach(function (r) { var l = r[R.conv] === null ? "-" : String(r[R.conv]); if (lanes.indexOf(l) < 0) lanes.push(l); });
    var end = Math.max.apply(null, reqs.map(function (r) { return r[R.offset] + r[R.total]; })) || 1;
    var W = 760, left = 60, laneH = 22, top = 8, H = top + lanes.length * laneH + 24;
    var x = function (ms) { return left + ms / end * (W - left - 10); };
    var svg = '<svg class="timeline" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="request timeline">';
    lanes.forEach(function (l, i) {
      svg += '<text x="4" y="' + (top + i * laneH + 14) + '">conv ' + esc(l) + "</text>";
    });
    for (var s = 0; s <= 4; s++) {
      var ms = end * s / 4, tx = x(ms);
      svg += '<line class="grid" x1="' + tx + '" x2="' + tx + '" y1="' + top + '" y2="' + (H - 18) + '"></line>';
      svg += '<text x="' + tx + '" y="' + (H - 4) + '" text-anchor="middle">' + num(ms / 1000, 0) + " s</text>";
    }
    reqs.forEach(function (r, n) {
      var y = top + lanes.indexOf(r[R.conv] === null ? "-" : String(r[R.conv])) * laneH + 3;
      var at = r[R.offset], parts = [["queue", r[R.queue] || 0], ["prefill", r[R.promptMs] || 0], ["decode", r[R.predMs] || 0]];
      var used = parts.reduce(function (a, p) { return a + p[1]; }, 0);
      parts.push(["other", Math.max(0, r[R.total] - used)]);
      var title = esc("request " + (n + 1) + ": " + figures(r, null));
      parts.forEach(function (p) {
        if (p[1] <= 0) return;
        var w = Math.max(0.5, x(at + p[1]) - x(at));
        svg += '<rect class="' + p[0] + '" x="' + x(at) + '" y="' + y + '" width="' + w + '" height="16"><title>' + title + "</title></rect>";
        at += p[1];
      });
    });
    svg += "</svg>";
    var box = add(parent, node("div", "timeline-box"));
    box.innerHTML = svg;
    var legend = add(parent, node("p", "legend note"));
    ["queue", "prefill", "decode", "other"].forEach(function (k) { add(legend, node("span", null, "■ " + k)).className = "key-" + k; });
  }
  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  function collapsed(parent, summary, text) {
    var d = add(parent, node("details"));
    add(d, node("summary", null, summary));
    add(d, node("pre", null, text));
  }
  function content(parent, c) {
    if (c === null || c === undefined) return;
    if (typeof c === "string") { if (c) add(parent, node("pre", null, c)); return; }
    if (!Array.isArray(c)) { add(parent, node("pre", null, JSON.stringify(c, null, 2))); return; }
    c.forEach(function (part) {
      if (part && part.type === "text") add(parent, node("pre", null, part.text));
      else if (part && part.type === "tool_result") {
        add(parent, node("div", "role", "tool result" + (part.tool_use_id ? " " + part.tool_use_id : "")));
        content(parent, part.content);
      } else if (part && part.type === "tool_use") {
        add(parent, node("div", "call", "→ " + part.name));
        add(parent, node("pre", null, JSON.stringify(part.input, null, 2)));
      } else add(parent, node("pre", null, JSON.stringify(part, null, 2)));
    });
  }
  function item(parent, it, shared) {
    var v = it.r !== undefined ? shared[it.r] : it.v;
    if (v === undefined || v === null) { add(parent, node("p", "not-recorded", "item not in the page")); return; }
    var box = add(parent, node("div", "item"));
    if (v.role) {
      var label = v.role + (v.tool_call_id ? " (" + v.tool_call_id + ")" : "");
      if (v.role === "system") {
        collapsed(box, "system prompt (" + (typeof v.content === "string" ? v.content.length : JSON.stringify(v.content).length) + " chars)",
          typeof v.content === "string" ? v.content : JSON.stringify(v.content, null, 2));
        return;
      }
      add(box, node("div", "role", label));
      content(box, v.content);
      (v.tool_calls || []).forEach(function (call) {
        var f = call.function || {};
        add(box, node("div", "call", "→ " + (f.name || call.name || "?") + (call.id ? " (" + call.id + ")" : "")));
        add(box, node("pre", null, pretty(f.arguments !== undefined ? f.arguments : call.arguments || "")));
      });
    } else if (v.tools) {
      collapsed(box, v.tools.length + " tool definitions", JSON.stringify(v.tools, null, 2));
    } else if (v.system !== undefined) {
      collapsed(box, "system", typeof v.system === "string" ? v.system : JSON.stringify(v.system, null, 2));
    } else if (v.instructions !== undefined) {
      collapsed(box, "instructions", typeof v.instructions === "string" ? v.instructions : JSON.stringify(v.instructions, null, 2));
    } else if (v.prompt !== undefined) {
      add(box, node("div", "role", "prompt"));
      add(box, node("pre", null, v.prompt));
    } else add(box, node("pre", null, JSON.stringify(v, null, 2)));
  }
  function transcript(parent, t, run, id) {
    add(parent, node("h3", null, "transcript"));
    var box = add(parent, node("div"));
    box.id = "transcript";
    if (t.state !== "ok" || !t.turns.length) {
      add(box, node("p", "not-recorded", t.state === "ok" ? "transcript: empty" : "transcript: " + t.state));
      return;
    }
    var shared = block("shared") || {};
    t.turns.forEach(function (turn, i) {
      var div = add(box, node("div", "turn"));
      var r = turn.req;
      add(div, node("div", "figures", "turn " + (r[R.turn] === null ? i : r[R.turn]) +
        (r[R.conv] === null ? "" : " of conversation " + r[R.conv]) + " · " + figures(r, turn.error)));
      if (turn.kept) add(div, node("p", "note", "… " + turn.kept + " earlier prompt items, as in the previous turn"));
      turn.new.forEach(function (it) { item(div, it, shared); });
      var a = turn.answer, ans = add(div, node("div", "answer"));
      add(ans, node("div", "role", "answer" + (a.finish_reason ? " (" + a.finish_reason + ")" : "")));
      if (a.reasoning) collapsed(ans, "reasoning (" + a.reasoning.length + " chars)", a.reasoning);
      if (a.text) add(ans, node("pre", null, a.text));
      (a.tool_calls || []).forEach(function (call) {
        add(ans, node("div", "call", "→ " + call.name + (call.id ? " (" + call.id + ")" : "")));
        add(ans, node("pre", null, pretty(call.arguments)));
      });
    });
    var cuts = [];
    if (t.dropped_turns) cuts.push(t.dropped_turns + " turns left out of the page");
    if (t.cut_texts) cuts.push(t.cut_texts + " texts cut (" + t.cut_bytes + " bytes)");
    if (t.recorder_dropped_turns) cuts.push(t.recorder_dropped_turns + " turns dropped by the recorder's cap");
    if (t.bad_lines) cuts.push(t.bad_lines + " unreadable lines");
    if (cuts.length) add(box, node("p", "cut", cuts.join("; ") + (t.hint ? ". The whole transcript: " + t.hint : "")));
  }
  function showTrial(state) {
    var view = byId("trial-view");
    if (!state.trial) { view.hidden = true; view.textContent = ""; lastTrial = ""; return; }
    var d = block("t-" + state.trial);
    view.textContent = "";
    if (!d) {
      add(view, node("p", "not-recorded", "no trial " + state.trial + " in this report"));
      view.hidden = false;
      return;
    }
    add(view, node("h2", null, d.id + " of run " + d.run));
    var facts = [(d.resolved ? "resolved" : "not resolved"), d.passed + "/" + d.total + " tests passed (starter " + d.baseline + ")",
      d.failed + " failed, " + d.errors + " errors, " + d.skipped + " skipped",
      "agent " + num(d.agent_s, 1) + " s, grading " + num(d.grade_s, 1) + " s, wall " + num(d.wall_s, 1) + " s"];
    if (d.decode_tps !== null) facts.push("decode " + num(d.decode_tps, 1) + " tok/s, prefill " + num(d.prefill_tps, 0) + " tok/s");
    if (d.timed_out) facts.push("TIMED OUT");
    if (d.exit_code !== null) facts.push("exit code " + d.exit_code);
    add(view, node("p", null, facts.join(" · ")));
    if (d.command) add(view, node("p", "figures", d.command + (d.agent_version ? " (" + d.agent_version + ")" : "")));
    if (d.error) add(view, node("p", "cut", "error: " + d.error));
    if (d.void) add(view, node("p", "cut", "grade void: " + d.void));
    if (d.suspicious.length) collapsed(view, d.suspicious.length + " suspicious lines in the change", d.suspicious.join("\n"));
    if (d.telemetry_missing.length) add(view, node("p", "note", "telemetry missing: " + d.telemetry_missing.join("; ")));
    testList(view, "tests-fixed", "fixed against the starter", d.fixed);
    testList(view, "tests-broken", "broken against the starter", d.broken);
    add(view, node("h3", null, "failing (" + d.failing.length + ")"));
    var failing = add(view, node("div", "tests-failing"));
    if (!d.failing.length) add(failing, node("p", "not-recorded", "none"));
    d.failing.forEach(function (f) {
      add(failing, node("div", "call", f.name + " — " + f.outcome));
      if (f.message) add(failing, node("pre", null, f.message));
    });
    timeline(view, d.requests);
    diff(view, d.diff);
    excerpt(view, "stdout", "stdout", d.stdout);
    if (d.output_dropped[0]) add(view, node("p", "cut", d.output_dropped[0] + " bytes of stdout past the harness's cap were never stored"));
    excerpt(view, "stderr", "stderr", d.stderr);
    if (d.output_dropped[1]) add(view, node("p", "cut", d.output_dropped[1] + " bytes of stderr past the harness's cap were never stored"));
    transcript(view, d.transcript, d.run, d.id);
    view.hidden = false;
    // A trial just opened is brought into view; a filter changed under it leaves it be.
    if (state.trial !== lastTrial) view.scrollIntoView();
    lastTrial = state.trial;
  }
  var lastTrial = "";

  // --- wiring ---
  function apply() {
    var state = readHash();
    var failures = byId("failures"), different = byId("different"), q = byId("q");
    failures.checked = state.failures;
    if (different) different.checked = state.different;
    else state.different = false;
    if (q.value !== state.q && document.activeElement !== q) q.value = state.q;
    filterMatrix(state);
    showCell(state);
    showTrial(state);
  }
  byId("failures").addEventListener("change", function (e) { go({ failures: e.target.checked }); });
  if (byId("different")) byId("different").addEventListener("change", function (e) { go({ different: e.target.checked }); });
  byId("q").addEventListener("input", function (e) { go({ q: e.target.value }, true); });
  document.addEventListener("click", function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    var a = e.target.closest ? e.target.closest("a[href^='#']") : null;
    var td = e.target.closest ? e.target.closest("td.cell") : null;
    if (a) {
      // A link opens a cell or a trial and keeps the filters.
      var h = a.getAttribute("href").slice(1), i = h.indexOf("=");
      var key = h.slice(0, i), value = decodeURIComponent(h.slice(i + 1));
      if (key === "cell") { e.preventDefault(); go({ cell: value, trial: "" }); }
      else if (key === "trial") { e.preventDefault(); go({ trial: value }); }
    } else if (td) {
      go({ cell: td.dataset.run + "/" + td.dataset.problem + "/" + td.dataset.group, trial: "" });
    }
  });
  window.addEventListener("hashchange", apply);
  apply();
  document.body.dataset.ready = "1";
})();
