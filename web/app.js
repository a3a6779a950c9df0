// The page at `/`: reads metrics (any /detect body, or CSV), asks this gateway's
// POST /detect with the chosen options as query parameters (so the body is sent as
// typed, and the server's errors name its JSON paths), and draws each series in SVG
// with its outliers and bounds. No library, no request to any other origin (the
// Content-Security-Policy header enforces it).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 900, HEIGHT = 260;
  const MARGIN = { left: 64, right: 12, top: 12, bottom: 28 };
  // Past this many outliers in a chart, the marks leave the tab order (the table below
  // lists every outlier anyway).
  const FOCUSABLE_MARKS = 500;

  const $ = (id) => document.getElementById(id);
  const form = $("detect-form"), input = $("input"), fileInput = $("file"), dropZone = $("drop-zone");
  const errorBox = $("error"), statusLine = $("status"), charts = $("charts"), results = $("results");
  const tooltip = $("tooltip"), table = $("outliers");

  let lastRows = [];
  let sortKey = "index", sortAscending = true;
  // The gateway's limits (GET /ui/limits.json): a body past maxBodyBytes is refused
  // here, in words, rather than sent to be cut off (the gateway answers 413 before
  // reading it and closes the connection, which a browser may report as a reset).
  let limits = null;
  fetch("/ui/limits.json").then((r) => (r.ok ? r.json() : null)).then((l) => { limits = l; }, () => {});

  // ---------------------------------------------------------------- reading input

  /** A body to send and the metrics to draw ({index, name, value, time, timeText});
   *  metrics is null when the text is JSON the page cannot read (the server says why). */
  function readInput(text) {
    const trimmed = text.trim();
    if (trimmed === "") throw new InputError("Paste metrics, drop a file, or choose Demo data.");
    if (trimmed[0] === "{" || trimmed[0] === "[") {
      let parsed;
      try { parsed = JSON.parse(trimmed); } catch (e) { return { body: text, metrics: null }; }
      return { body: text, metrics: metricsOfJSON(parsed) };
    }
    return readCSV(trimmed);
  }

  class InputError extends Error {}

  function metricsOfJSON(parsed) {
    let list;
    if (Array.isArray(parsed)) list = parsed;
    else if (parsed && typeof parsed === "object") list = Array.isArray(parsed.metrics) ? parsed.metrics : [];
    else return null;
    return list.map((item, index) => {
      if (item !== null && typeof item === "object") {
        const timeText = typeof item.time === "string" ? item.time : null;
        return { index, name: typeof item.name === "string" ? item.name : "", value: Number(item.value ?? 0),
                 timeText, time: timeText === null ? null : Date.parse(timeText) };
      }
      return { index, name: "", value: Number(item), timeText: null, time: null };
    });
  }

  /** CSV: a header naming time, name and value columns (value required), or one
   *  number per line. Converted to {"metrics": [...]}. */
  function readCSV(text) {
    const lines = text.split(/\r?\n/);
    const first = lines[0].split(",").map((cell) => cell.trim().toLowerCase());
    const metrics = [];
    if (first.includes("value")) {
      const column = { time: first.indexOf("time"), name: first.indexOf("name"), value: first.indexOf("value") };
      for (let i = 1; i < lines.length; i++) {
        if (lines[i].trim() === "") continue;
        const cells = lines[i].split(",").map((cell) => cell.trim());
        const value = Number(cells[column.value]);
        if (cells[column.value] === undefined || cells[column.value] === "" || !Number.isFinite(value)) {
          throw new InputError(`CSV line ${i + 1}: "${cells[column.value] ?? ""}" is not a number (the value column)`);
        }
        const metric = { value };
        if (column.name >= 0 && cells[column.name]) metric.name = cells[column.name];
        if (column.time >= 0 && cells[column.time]) metric.time = cells[column.time];
        metrics.push(metric);
      }
    } else {
      for (let i = 0; i < lines.length; i++) {
        const cell = lines[i].trim();
        if (cell === "") continue;
        const value = Number(cell);
        if (!Number.isFinite(value)) {
          throw new InputError(`line ${i + 1}: "${cell}" is not a number (CSV is a header time,name,value, or one number per line)`);
        }
        metrics.push({ value });
      }
    }
    const body = JSON.stringify({ metrics });
    return { body, metrics: metricsOfJSON({ metrics }) };
  }

  // ---------------------------------------------------------------- asking the gateway

  async function detect(event) {
    if (event) event.preventDefault();
    hideError();
    let request;
    try {
      request = readInput(input.value);
    } catch (e) {
      if (e instanceof InputError) { showError(e.message); return; }
      throw e;
    }
    const bodyBytes = new TextEncoder().encode(request.body).length;
    if (limits && bodyBytes > limits.maxBodyBytes) {
      const count = request.metrics ? `${request.metrics.length.toLocaleString("en")} values, ` : "";
      showError(`This input is too large for this gateway: ${count}${megabytes(bodyBytes)} as a request body, `
        + `and it takes bodies up to ${megabytes(limits.maxBodyBytes)} (--max-body-bytes). Send fewer values.`);
      return;
    }
    const threshold = $("threshold").value.trim() === "" ? "0" : $("threshold").value.trim();
    const query = new URLSearchParams({
      method: $("method").value, threshold, group_by_name: String($("group").checked), details: "true",
    });
    statusLine.textContent = "Detecting…";
    const started = performance.now();
    let response, answer;
    try {
      response = await fetch("/detect?" + query.toString(), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: request.body,
      });
      answer = await response.json();
    } catch (e) {
      statusLine.textContent = "";
      showError("The gateway did not answer: " + e.message);
      return;
    }
    const roundTrip = performance.now() - started;
    if (!response.ok) {
      statusLine.textContent = "";
      showError(answer && answer.message ? answer.message : `HTTP ${response.status}`, response.status);
      return;
    }
    if (!answer.series) {
      // A backend that predates options (the article's Python server) answers the
      // indices only: one series, no bounds, no scores.
      const metrics = request.metrics || [];
      answer.series = [{ name: "", count: metrics.length, center: NaN, spread: NaN, lower: NaN, upper: NaN }];
      answer.outliers = answer.indices.map((index) => ({
        index, name: metrics[index] ? metrics[index].name : "", value: metrics[index] ? metrics[index].value : NaN, score: NaN,
      }));
      $("group").checked = false;
    }
    const drawStarted = performance.now();
    draw(request.metrics, answer);
    const drawMs = performance.now() - drawStarted;
    charts.dataset.drawMs = drawMs.toFixed(1);
    const count = answer.indices.length;
    const values = answer.series.reduce((sum, s) => sum + s.count, 0);
    statusLine.textContent = `${count} outlier${count === 1 ? "" : "s"} in ${values} value${values === 1 ? "" : "s"}`
      + ` · round trip ${roundTrip.toFixed(1)} ms · drawn in ${drawMs.toFixed(1)} ms`;
  }

  function megabytes(bytes) { return `${(bytes / 1048576).toFixed(1)} MiB`; }

  function showError(message, status) {
    errorBox.replaceChildren();
    // The server's messages start with the JSON path they concern: "metrics[3].value: …".
    const match = /^([A-Za-z_][\w.]*(?:\[\d+\][\w.]*)*|\[\d+\][\w.]*): (.*)$/s.exec(message);
    const lead = document.createElement("strong");
    lead.textContent = status ? `Refused (HTTP ${status}): ` : "Cannot send: ";
    errorBox.append(lead);
    if (match) {
      const path = document.createElement("code");
      path.className = "path";
      path.textContent = match[1];
      errorBox.append(path, ": " + match[2]);
    } else {
      errorBox.append(message);
    }
    errorBox.hidden = false;
    charts.replaceChildren();
    results.hidden = true;
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  // ---------------------------------------------------------------- drawing

  function draw(metrics, answer) {
    charts.replaceChildren();
    const outliers = answer.outliers || [];
    const byIndex = new Map(outliers.map((o) => [o.index, o]));
    const grouped = $("group").checked;
    for (const series of answer.series) {
      const points = metrics === null ? [] : (grouped ? metrics.filter((m) => m.name === series.name) : metrics);
      charts.append(chart(series, points, byIndex));
    }
    lastRows = outliers.map((o) => {
      const metric = metrics && metrics[o.index];
      return { index: o.index, name: o.name, time: metric && metric.timeText ? metric.timeText : "",
               value: o.value, score: o.score };
    });
    renderTable();
    results.hidden = false;
  }

  function finite(x) { return typeof x === "number" && Number.isFinite(x); }

  function chart(series, points, byIndex) {
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.series = series.name;
    const caption = document.createElement("figcaption");
    const title = series.name === "" ? "All values" : `Series “${series.name}”`;
    const marks = points.filter((p) => byIndex.has(p.index));
    caption.append(title + " ");
    const numbers = document.createElement("span");
    numbers.className = "numbers";
    numbers.textContent = `${series.count} values, ${marks.length} outlier${marks.length === 1 ? "" : "s"};`
      + ` center ${format(series.center)}, spread ${format(series.spread)},`
      + ` bounds ${format(series.lower)} … ${format(series.upper)}`;
    caption.append(numbers);

    // Over time when every point has a time and the times differ; otherwise over index.
    const useTime = points.length > 1 && points.every((p) => finite(p.time))
      && points.some((p) => p.time !== points[0].time);
    const xOf = (p) => (useTime ? p.time : p.index);
    let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
    for (const p of points) {
      const x = xOf(p);
      if (x < xMin) xMin = x;
      if (x > xMax) xMax = x;
      if (p.value < yMin) yMin = p.value;
      if (p.value > yMax) yMax = p.value;
    }
    if (points.length === 0) { xMin = 0; xMax = 1; yMin = 0; yMax = 1; }
    // The band is shown where it meets the data's range, widened a little to show it.
    for (const bound of [series.lower, series.upper]) {
      if (finite(bound) && bound >= yMin - (yMax - yMin) && bound <= yMax + (yMax - yMin)) {
        yMin = Math.min(yMin, bound);
        yMax = Math.max(yMax, bound);
      }
    }
    if (xMax === xMin) { xMin -= 1; xMax += 1; }
    if (yMax === yMin) { yMin -= 1; yMax += 1; }
    const pad = (yMax - yMin) * 0.05;
    yMin -= pad; yMax += pad;
    const plotW = WIDTH - MARGIN.left - MARGIN.right, plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const sx = (x) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
    const sy = (y) => MARGIN.top + (1 - (y - yMin) / (yMax - yMin)) * plotH;

    const svg = element("svg", { class: "plot", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
      "aria-label": `${title}: ${series.count} values over ${useTime ? "time" : "index"}, ${marks.length} outliers`
        + ` marked with triangles, the band between ${format(series.lower)} and ${format(series.upper)} shaded` });
    const clamp = (y) => Math.max(MARGIN.top, Math.min(MARGIN.top + plotH, y));
    const bandTop = clamp(finite(series.upper) ? sy(series.upper) : (series.upper > 0 ? -Infinity : Infinity));
    const bandBottom = clamp(finite(series.lower) ? sy(series.lower) : (series.lower > 0 ? -Infinity : Infinity));
    if (bandBottom > bandTop) {
      svg.append(element("rect", { class: "band", x: MARGIN.left, y: bandTop, width: plotW, height: bandBottom - bandTop }));
    }
    for (const bound of [series.lower, series.upper]) {
      if (finite(bound) && bound >= yMin && bound <= yMax) {
        svg.append(element("line", { class: "bound", x1: MARGIN.left, x2: MARGIN.left + plotW, y1: sy(bound), y2: sy(bound) }));
      }
    }
    svg.append(axes(xMin, xMax, yMin, yMax, sx, sy, useTime, plotW, plotH));
    if (points.length > 0) svg.append(element("path", { class: "series-line", d: decimatedPath(points, xOf, sx, sy) }));

    const hoverDot = element("circle", { class: "hover-dot", r: 4, visibility: "hidden" });
    const triangle = (x, y) => `M${x.toFixed(1)} ${(y - 6).toFixed(1)}L${(x + 5.5).toFixed(1)} ${(y + 4).toFixed(1)}`
      + `L${(x - 5.5).toFixed(1)} ${(y + 4).toFixed(1)}Z`;
    const focusable = marks.length <= FOCUSABLE_MARKS;
    for (const p of marks) {
      const outlier = byIndex.get(p.index);
      const mark = element("path", { class: "outlier-mark", d: triangle(sx(xOf(p)), sy(p.value)),
        "data-index": p.index, role: "img", "aria-label": describe(p, outlier) });
      if (focusable) mark.setAttribute("tabindex", "0");
      mark.addEventListener("focus", () => showTooltip(mark, p, outlier));
      mark.addEventListener("blur", hideTooltip);
      mark.addEventListener("mouseenter", () => showTooltip(mark, p, outlier));
      mark.addEventListener("mouseleave", hideTooltip);
      svg.append(mark);
    }
    svg.append(hoverDot);

    // Hovering anywhere shows the nearest point (by x) of the series.
    const sorted = points.slice().sort((a, b) => xOf(a) - xOf(b));
    svg.addEventListener("mousemove", (event) => {
      if (sorted.length === 0 || event.target.classList.contains("outlier-mark")) return;
      const box = svg.getBoundingClientRect();
      const x = xMin + ((event.clientX - box.left) * (WIDTH / box.width) - MARGIN.left) / plotW * (xMax - xMin);
      let lo = 0, hi = sorted.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (xOf(sorted[mid]) < x) lo = mid + 1; else hi = mid;
      }
      if (lo > 0 && Math.abs(xOf(sorted[lo - 1]) - x) < Math.abs(xOf(sorted[lo]) - x)) lo -= 1;
      const p = sorted[lo];
      hoverDot.setAttribute("cx", sx(xOf(p)));
      hoverDot.setAttribute("cy", sy(p.value));
      hoverDot.setAttribute("visibility", "visible");
      showTooltip(hoverDot, p, byIndex.get(p.index));
    });
    svg.addEventListener("mouseleave", () => { hoverDot.setAttribute("visibility", "hidden"); hideTooltip(); });
    figure.append(caption, svg);
    return figure;
  }

  /** The line through every point, or, past two points per pixel, through each pixel
   *  column's first, lowest, highest and last point (what a full line would show). */
  function decimatedPath(points, xOf, sx, sy) {
    const sorted = points.slice().sort((a, b) => xOf(a) - xOf(b) || a.index - b.index);
    const parts = [];
    const add = (p) => parts.push((parts.length === 0 ? "M" : "L") + sx(xOf(p)).toFixed(1) + " " + sy(p.value).toFixed(1));
    const columns = WIDTH - MARGIN.left - MARGIN.right;
    if (sorted.length <= 2 * columns) {
      sorted.forEach(add);
      return parts.join("");
    }
    let column = null, first, low, high, last;
    const flush = () => {
      const chosen = [first, low, high, last].filter((p, i, all) => all.indexOf(p) === i);
      chosen.sort((a, b) => xOf(a) - xOf(b) || a.index - b.index).forEach(add);
    };
    for (const p of sorted) {
      const c = Math.floor(sx(xOf(p)));
      if (c !== column) {
        if (column !== null) flush();
        column = c; first = low = high = last = p;
      } else {
        if (p.value < low.value) low = p;
        if (p.value > high.value) high = p;
        last = p;
      }
    }
    flush();
    return parts.join("");
  }

  function axes(xMin, xMax, yMin, yMax, sx, sy, useTime, plotW, plotH) {
    const group = element("g", { "aria-hidden": "true" });
    const bottom = MARGIN.top + plotH;
    group.append(element("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left + plotW, y1: bottom, y2: bottom }));
    group.append(element("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom }));
    for (let i = 0; i <= 4; i++) {
      const y = yMin + (i / 4) * (yMax - yMin);
      const label = element("text", { x: MARGIN.left - 6, y: sy(y) + 4, "text-anchor": "end" });
      label.textContent = format(y, 4);
      group.append(label);
      const x = xMin + (i / 4) * (xMax - xMin);
      const xLabel = element("text", { x: sx(x), y: bottom + 18, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
      xLabel.textContent = useTime ? new Date(x).toISOString().replace(".000Z", "Z") : String(Math.round(x));
      group.append(xLabel);
    }
    return group;
  }

  function element(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  }

  function format(x, digits = 6) {
    if (typeof x === "string") return x;  // "Infinity", "-Infinity", "NaN" in proto3 JSON
    if (!finite(x)) return String(x);
    return Math.abs(x) >= 1e6 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(digits - 1) : String(Number(x.toPrecision(digits)));
  }

  function describe(p, outlier) {
    const parts = [`index ${p.index}`];
    if (p.timeText) parts.push(`time ${p.timeText}`);
    parts.push(`value ${p.value}`);
    if (outlier) parts.push(`score ${format(outlier.score)}`);
    return parts.join(", ");
  }

  function showTooltip(anchor, p, outlier) {
    tooltip.textContent = describe(p, outlier).split(", ").join("\n");
    tooltip.hidden = false;
    const box = anchor.getBoundingClientRect();
    tooltip.style.left = `${window.scrollX + box.right + 8}px`;
    tooltip.style.top = `${window.scrollY + box.top - 8}px`;
  }

  function hideTooltip() { tooltip.hidden = true; }

  // ---------------------------------------------------------------- the table

  function renderTable() {
    const numeric = (x) => (typeof x === "string" ? (x === "Infinity" ? Infinity : x === "-Infinity" ? -Infinity : NaN) : x);
    const rows = lastRows.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const order = typeof x === "string" && sortKey !== "score" ? x.localeCompare(y) : numeric(x) - numeric(y);
      return (sortAscending ? order : -order) || a.index - b.index;
    });
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      for (const key of ["index", "name", "time", "value", "score"]) {
        const td = document.createElement("td");
        td.textContent = key === "score" ? format(row.score) : String(row[key]);
        tr.append(td);
      }
      return tr;
    }));
    for (const th of table.tHead.rows[0].cells) {
      const key = th.querySelector("button").dataset.key;
      th.setAttribute("aria-sort", key === sortKey ? (sortAscending ? "ascending" : "descending") : "none");
    }
  }

  table.tHead.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const key = button.dataset.key;
    sortAscending = key === sortKey ? !sortAscending : true;
    sortKey = key;
    renderTable();
  });

  // ---------------------------------------------------------------- files and demo

  function readFile(file) {
    const reader = new FileReader();
    reader.onload = () => { input.value = reader.result; hideError(); };
    reader.onerror = () => showError(`Cannot read ${file.name}: ${reader.error}`);
    reader.readAsText(file);
  }

  fileInput.addEventListener("change", () => { if (fileInput.files.length > 0) readFile(fileInput.files[0]); });
  dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (event.dataTransfer.files.length > 0) readFile(event.dataTransfer.files[0]);
  });

  $("demo").addEventListener("click", async () => {
    hideError();
    try {
      const response = await fetch("/ui/demo.json");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      input.value = await response.text();
      statusLine.textContent = "Demo data loaded: 1000 CPU metrics. Choose Detect.";
    } catch (e) {
      showError("Cannot load the demo data: " + e.message);
    }
  });

  form.addEventListener("submit", detect);
})();
