/* ACAV-1M clip browser.
 *
 * Data arrives as script files (they load from file:// where fetch() cannot):
 *   data/manifest.js      ACAV.manifest({...})  totals, vocabularies, per-chunk facets
 *   data/chunks/N.js      ACAV.chunk(N, {...})  columnar rows of one chunk
 *   data/terms/PP.js      ACAV.terms("PP", {term: [chunk ids]})
 * A query first drops every chunk its facets or the term index rule out, then
 * loads the remaining chunks one by one and stops once a page of results is
 * full, so a query costs about one chunk however large the release is.
 *
 * Text from the data is only ever set with textContent or as a property
 * (src, href built from validated keys), never parsed as HTML.
 */
(function () {
  "use strict";

  var PAGE = 24;
  var CACHE_CHUNKS = 12;
  var DEBOUNCE_MS = 120;

  var ACAV = (window.ACAV = window.ACAV || {});
  var incomingChunks = new Map();
  var incomingTerms = new Map();
  var chunkCache = new Map(); // id -> Promise<chunk>, in least-recently-used order
  var termCache = new Map(); // prefix -> Promise<{term: ids}>
  var manifest = null;
  var run = null; // the current query's scan state
  var seq = 0;

  ACAV.stats = { queries: 0, lastMs: null, firstResultsAt: null, chunksLoaded: 0, done: false, seq: 0 };
  ACAV.chunk = function (id, data) { incomingChunks.set(id, data); };
  ACAV.terms = function (prefix, terms) { incomingTerms.set(prefix, terms); };
  ACAV.manifest = function (m) {
    manifest = m;
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
    else init();
  };

  // ------------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pad5(n) { return String(n).padStart(5, "0"); }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.async = true;
      s.onload = function () { s.remove(); resolve(); };
      s.onerror = function () { s.remove(); reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  function loadChunk(id) {
    var hit = chunkCache.get(id);
    if (hit) { chunkCache.delete(id); chunkCache.set(id, hit); return hit; }
    var promise = loadScript("data/chunks/" + pad5(id) + ".js").then(function () {
      var data = incomingChunks.get(id);
      incomingChunks.delete(id);
      if (!data) throw new Error("chunk " + id + " is empty");
      ACAV.stats.chunksLoaded += 1;
      return data;
    });
    promise.catch(function () { chunkCache.delete(id); });
    chunkCache.set(id, promise);
    while (chunkCache.size > CACHE_CHUNKS) chunkCache.delete(chunkCache.keys().next().value);
    return promise;
  }

  function loadTerms(prefix) {
    if (!termCache.has(prefix)) {
      var promise = manifest.termFiles.indexOf(prefix) < 0
        ? Promise.resolve({})
        : loadScript("data/terms/" + prefix + ".js").then(function () {
            var t = incomingTerms.get(prefix) || {};
            incomingTerms.delete(prefix);
            return t;
          });
      termCache.set(prefix, promise);
    }
    return termCache.get(prefix);
  }

  var WORD_SPLIT = /[^\p{L}\p{N}]+/gu;

  /** Caption words with a leading space each, so " " + word-prefix is a substring test. */
  function normalised(chunk) {
    if (!chunk.norm) {
      chunk.norm = chunk.caption.map(function (c) {
        return c ? " " + c.toLowerCase().replace(WORD_SPLIT, " ") : "";
      });
    }
    return chunk.norm;
  }

  function queryWords(text) {
    return text.toLowerCase().split(WORD_SPLIT).filter(Boolean);
  }

  // ------------------------------------------------------------------ the query

  function readQuery() {
    var q = {
      text: $("q").value.trim(),
      split: $("split").value === "" ? null : Number($("split").value),
      label: $("label").value === "" ? null : Number($("label").value),
      status: $("status").value,
      media: $("with-media").checked,
      ranges: {},
    };
    q.words = queryWords(q.text);
    manifest.scores.forEach(function (s) {
      var lo = parseFloat($("min-" + s).value), hi = parseFloat($("max-" + s).value);
      lo = isFinite(lo) ? Math.max(0, lo) : 0;
      hi = isFinite(hi) ? Math.min(1, hi) : 1;
      if (lo > 0 || hi < 1) q.ranges[s] = [lo, hi];
    });
    return q;
  }

  function chunkMayMatch(c, q) {
    if (q.split !== null && c.split !== q.split) return false;
    if (q.label !== null && !c.labels[String(q.label)]) return false;
    if (q.status === "passed" && !c.passed) return false;
    if (q.status === "flagged" && c.passed === c.n) return false;
    if (q.status.indexOf("flag:") === 0 && !c.flags[q.status.slice(5)]) return false;
    if (q.media && !c.media) return false;
    for (var s in q.ranges) {
      var r = c.ranges[s];
      if (!r || r[1] < q.ranges[s][0] || r[0] > q.ranges[s][1]) return false;
    }
    return true;
  }

  /** Chunk ids that can hold every ASCII query word (null: the term index cannot narrow this query). */
  function termChunks(words) {
    var usable = words.filter(function (w) { return w.length >= 2 && /^[a-z0-9]+$/.test(w); });
    if (!usable.length) return Promise.resolve(null);
    return Promise.all(usable.map(function (w) {
      return loadTerms(w.slice(0, 2)).then(function (terms) {
        var ids = new Set();
        for (var t in terms) if (t.lastIndexOf(w, 0) === 0) terms[t].forEach(function (i) { ids.add(i); });
        return ids;
      });
    })).then(function (sets) {
      return sets.reduce(function (a, b) { return new Set(Array.from(a).filter(function (x) { return b.has(x); })); });
    });
  }

  function rowMatches(d, i, q, norm) {
    if (q.label !== null && d.label[i] !== q.label) return false;
    if (q.status === "passed" && !d.passed[i]) return false;
    if (q.status === "flagged" && d.passed[i]) return false;
    if (q.status.indexOf("flag:") === 0 && !(d.flags[i] & (1 << Number(q.status.slice(5))))) return false;
    if (q.media && !(d.media[i] & 1)) return false;
    for (var s in q.ranges) {
      var v = d[s][i];
      if (v === null || v < q.ranges[s][0] || v > q.ranges[s][1]) return false;
    }
    for (var w = 0; w < q.words.length; w++) {
      if (norm[i].indexOf(" " + q.words[w]) < 0) return false;
    }
    return true;
  }

  function start() {
    var mine = ++seq;
    var t0 = performance.now();
    var q = readQuery();
    writeHash(q);
    ACAV.stats.done = false;
    ACAV.stats.queries += 1;
    $("cards").replaceChildren();
    run = { seq: mine, q: q, t0: t0, candidates: [], pos: 0, queue: [], counted: 0, shown: 0, scanned: 0, first: true };
    setStatus("Searching…");
    termChunks(q.words).then(function (allowed) {
      if (mine !== seq) return;
      manifest.chunks.forEach(function (c, id) {
        if (chunkMayMatch(c, q) && (!allowed || allowed.has(id))) run.candidates.push(id);
      });
      return fill(mine);
    }).catch(fail);
  }

  /** Render up to a page of matches, loading candidate chunks until the page is full or none are left. */
  function fill(mine) {
    var r = run;
    var rendered = 0;
    r.pagePos = r.pos;
    $("more").hidden = true;
    /** Put queued matches on the page as soon as a chunk yields them: a long scan shows results early. */
    function flush() {
      if (!r.queue.length || rendered >= PAGE) return;
      var fragment = document.createDocumentFragment();
      while (r.queue.length && rendered < PAGE) {
        var m = r.queue.shift();
        fragment.appendChild(card(m[0], m[1]));
        rendered += 1;
        r.shown += 1;
      }
      $("cards").appendChild(fragment);
      if (r.firstCardMs === undefined) r.firstCardMs = performance.now() - r.t0;
    }
    function step() {
      flush();
      if (rendered >= PAGE || r.pos >= r.candidates.length) return Promise.resolve(finish());
      if (r.pos > r.pagePos) {
        setStatus("Searching… " + r.scanned.toLocaleString() + " of " + manifest.rows.toLocaleString() +
          " clips searched, " + r.counted.toLocaleString() + " matching so far.");
        // a page that needs a second chunk is a rare match: fetch the next chunks in parallel
        r.candidates.slice(r.pos + 1, r.pos + 3).forEach(loadChunk);
      }
      var id = r.candidates[r.pos];
      return loadChunk(id).then(function (d) {
        if (mine !== seq) return;
        var norm = r.q.words.length ? normalised(d) : null;
        var found = 0;
        for (var i = 0; i < d.n; i++) {
          if (rowMatches(d, i, r.q, norm)) { r.queue.push([d, i]); found += 1; }
        }
        r.counted += found;
        r.pos += 1;
        r.scanned += d.n;
        return step();
      });
    }
    function finish() {
      if (mine !== seq) return;
      var complete = r.pos >= r.candidates.length;
      $("more").hidden = complete && !r.queue.length;
      var total = manifest.rows.toLocaleString();
      var text;
      if (!r.counted && complete) text = "No clips match. " + total + " clips in all.";
      else if (complete) text = r.counted.toLocaleString() + " matching clips; showing " + r.shown.toLocaleString() + ".";
      else text = "Showing " + r.shown.toLocaleString() + " of " + r.counted.toLocaleString() + "+ matching clips (searched " +
        r.scanned.toLocaleString() + " of " + total + " clips; " + (r.candidates.length - r.pos) + " more chunks may match).";
      setStatus(text);
      var ms = performance.now() - r.t0;
      if (r.first) {
        r.first = false;
        ACAV.stats.lastMs = ms;
        if (ACAV.stats.firstResultsAt === null) {
          ACAV.stats.firstResultsAt = performance.now();
          if (performance.mark) performance.mark("acav-first-results");
        }
      }
      ACAV.stats.done = true;
      ACAV.stats.seq = mine;
      ACAV.stats.firstCardMs = r.firstCardMs === undefined ? null : r.firstCardMs;
      ACAV.stats.counted = r.counted;
      ACAV.stats.shown = r.shown;
      ACAV.stats.candidates = r.candidates.length;
      document.documentElement.setAttribute("data-state", "ready");
    }
    return step();
  }

  function more() {
    if (!run) return;
    ACAV.stats.done = false;
    setStatus("Loading more…");
    fill(run.seq).catch(fail);
  }

  function fail(err) {
    setStatus("Could not load the index: " + (err && err.message ? err.message : err));
    document.documentElement.setAttribute("data-state", "error");
  }

  function setStatus(text) { $("status-line").textContent = text; }

  // ------------------------------------------------------------------ one clip

  function mediaUrl(key, ext) { return "media/" + encodeURIComponent(key) + "." + ext; }

  function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

  function card(d, i) {
    var key = d.key[i];
    var media = d.media[i];
    var article = el("article", "clip");
    article.dataset.key = key;

    var frame = el("div", "frame");
    var w = d.width[i] || 16, h = d.height[i] || 9;
    frame.style.aspectRatio = w + " / " + h;
    if (media & 1) {
      var video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.playsInline = true;
      if (media & 4) video.poster = mediaUrl(key, "jpg");
      video.src = mediaUrl(key, "mp4");
      frame.appendChild(video);
    } else {
      var shard = manifest.shards[d.shard[i]];
      frame.appendChild(el("div", "nomedia", "Video not copied into this site (see --max-media); it is in " + shard + "."));
    }
    if (d.mask[i] && (media & 2)) {
      var mask = document.createElement("img");
      mask.className = "mask overlay";
      mask.alt = "";
      mask.src = mediaUrl(key, "mask.png");
      frame.appendChild(mask);
    }
    var box = d.box[i];
    if (box) {
      var b = el("div", "box overlay");
      b.style.left = 100 * box[0] + "%";
      b.style.top = 100 * box[1] + "%";
      b.style.width = 100 * (box[2] - box[0]) + "%";
      b.style.height = 100 * (box[3] - box[1]) + "%";
      b.title = "localization box";
      frame.appendChild(b);
    }
    var peak = d.peak[i];
    if (peak) {
      var p = el("div", "peak overlay");
      p.style.left = 100 * peak[0] + "%";
      p.style.top = 100 * peak[1] + "%";
      frame.appendChild(p);
    }
    article.appendChild(frame);

    var info = el("div", "info");
    var caption = d.caption[i];
    info.appendChild(caption === null ? el("p", "caption missing", "No caption.") : el("p", "caption", caption));

    var tags = el("div", "tags");
    var label = d.label[i];
    if (label >= 0) {
      tags.appendChild(el("span", "tag label", manifest.labels[label] + (d.labelScore[i] !== null ? " " + fmt(d.labelScore[i], 2) : "")));
    }
    tags.appendChild(el("span", "tag split", manifest.splits[d.split]));
    tags.appendChild(el("span", d.passed[i] ? "tag ok" : "tag flagged", d.passed[i] ? "passed" : "flagged"));
    info.appendChild(tags);

    var scores = el("div", "scores");
    manifest.scores.forEach(function (s) {
      var v = d[s][i];
      var bit = manifest.flags.indexOf(s);
      var flagged = bit >= 0 && (d.flags[i] & (1 << bit));
      var row = el("div", "score " + (v === null ? "null" : flagged ? "flag" : "pass"));
      row.appendChild(el("span", "name", s));
      var bar = el("span", "bar");
      var fill = el("span", "fill");
      fill.style.width = (v === null ? 0 : 100 * v) + "%";
      bar.appendChild(fill);
      var t = manifest.thresholds[s];
      if (t !== null && t !== undefined) {
        var tick = el("span", "thr");
        tick.style.left = 100 * t + "%";
        tick.title = "threshold " + t;
        bar.appendChild(tick);
      }
      row.appendChild(bar);
      row.appendChild(el("span", "value", fmt(v, 3)));
      scores.appendChild(row);
    });
    info.appendChild(scores);

    var dl = el("dl", "meta");
    function item(name, value) {
      dl.appendChild(el("dt", null, name));
      var dd = el("dd");
      if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
      dl.appendChild(dd);
    }
    item("key", key);
    item("source", (d.videoId[i] || "–") + " @ " + fmt(d.start[i], 2) + " s, " + fmt(d.duration[i], 2) + " s long");
    item("path", d.path[i] || "–");
    item("sync", d.sync[i] === null ? "–" : (d.sync[i] > 0 ? "+" : "") + fmt(d.sync[i], 3) + " s");
    var shardName = manifest.shards[d.shard[i]];
    var href = manifest.shardHrefs[d.shard[i]];
    if (href) {
      var a = el("a", null, shardName);
      a.href = href;
      item("shard", a);
    } else {
      item("shard", shardName || "–");
    }
    var reason = d.reasons[String(i)];
    if (reason) item("nulls", reason);
    info.appendChild(dl);
    article.appendChild(info);
    return article;
  }

  // ------------------------------------------------------------------ page state

  function writeHash(q) {
    var parts = [];
    if (q.text) parts.push("q=" + encodeURIComponent(q.text));
    if (q.split !== null) parts.push("split=" + encodeURIComponent(manifest.splits[q.split]));
    if (q.label !== null) parts.push("label=" + q.label);
    if (q.status) parts.push("status=" + encodeURIComponent(q.status));
    if (q.media) parts.push("media=1");
    for (var s in q.ranges) parts.push(s + "=" + q.ranges[s][0] + "-" + q.ranges[s][1]);
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (hash !== location.hash) {
      try { history.replaceState(null, "", hash || location.pathname + location.search); } catch (e) { /* file:// quirks */ }
    }
  }

  function readHash(hash) {
    var params = {};
    hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var at = kv.indexOf("=");
      if (at > 0) {
        try { params[kv.slice(0, at)] = decodeURIComponent(kv.slice(at + 1)); } catch (e) { /* ignore bad escapes */ }
      }
    });
    if (params.q) $("q").value = params.q;
    if (params.split !== undefined) {
      var i = manifest.splits.indexOf(params.split);
      if (i >= 0) $("split").value = String(i);
    }
    if (params.label !== undefined && /^-?\d+$/.test(params.label)) $("label").value = params.label;
    if (params.status) $("status").value = params.status;
    if (!$("status").value) $("status").value = "";
    if (params.media) $("with-media").checked = true;
    manifest.scores.forEach(function (s) {
      var m = /^([\d.]+)-([\d.]+)$/.exec(params[s] || "");
      if (m) { $("min-" + s).value = m[1]; $("max-" + s).value = m[2]; }
    });
  }

  function fillSelects() {
    var splitCounts = manifest.splits.map(function () { return 0; });
    var unlabelled = 0;
    manifest.chunks.forEach(function (c) {
      splitCounts[c.split] += c.n;
      unlabelled += c.labels["-1"] || 0;
    });
    manifest.splits.forEach(function (s, i) {
      if (splitCounts[i]) $("split").appendChild(option(String(i), s + " (" + splitCounts[i].toLocaleString() + ")"));
    });
    manifest.labels
      .map(function (name, i) { return [name, i]; })
      .sort(function (a, b) { return a[0].localeCompare(b[0]); })
      .forEach(function (p) {
        $("label").appendChild(option(String(p[1]), p[0] + " (" + manifest.labelCounts[p[1]].toLocaleString() + ")"));
      });
    if (unlabelled) $("label").appendChild(option("-1", "(no label) (" + unlabelled.toLocaleString() + ")"));
    manifest.flags.forEach(function (f, i) { $("status").appendChild(option("flag:" + i, "flagged by " + f)); });
  }

  function option(value, text) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  }

  function init() {
    fillSelects();
    readHash(location.hash);
    var timer = null;
    $("q").addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(start, DEBOUNCE_MS);
    });
    $("filters").addEventListener("change", function (e) {
      if (e.target.id === "show-box" || e.target.id === "show-mask") return overlays();
      if (e.target.id !== "q") start();
    });
    $("filters").addEventListener("submit", function (e) { e.preventDefault(); clearTimeout(timer); start(); });
    $("filters").addEventListener("reset", function () { setTimeout(function () { overlays(); start(); }, 0); });
    $("more").addEventListener("click", more);
    overlays();
    start();
  }

  function overlays() {
    $("cards").classList.toggle("hide-box", !$("show-box").checked);
    $("cards").classList.toggle("hide-mask", !$("show-mask").checked);
  }

  /** Scripting and benchmarks: run a query given as text, or as a hash such as "q=dog&split=test". */
  ACAV.search = function (text) { $("q").value = text; start(); };
  ACAV.query = function (hash) { clearForm(); readHash(hash); start(); };

  function clearForm() {
    Array.prototype.forEach.call($("filters").elements, function (e) {
      if (e.type === "checkbox") e.checked = e.defaultChecked;
      else if (e.tagName === "SELECT") e.selectedIndex = 0;
      else if (e.tagName === "INPUT") e.value = e.defaultValue;
    });
    overlays();
  }
})();
