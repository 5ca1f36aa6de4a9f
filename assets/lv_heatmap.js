// The linked view, part 3: the word-level heatmap (an HTML table), its SVG/PNG export, and
// saliency beside it (computed on request by server.saliency).

function shownSaliency() {
  const found = Object.keys(SALIENCY_METHODS).map((m) => state.saliency.get(saliencyKey(m)))
    .filter((r) => r && r !== "pending");
  return found.length ? found[found.length - 1] : null;
}

// Indices of the tokens a heatmap shows: all, or all but </s> when it is hidden.
function shownIndices(tokens) {
  return tokens.map((t, i) => i).filter((i) => !(state.hideEos && tokens[i].eos));
}

function heatmap(matrix, outTokens, srcTokens, focusRow, label) {
  if (!matrix) return `<p class="lv-note">This model has no attention (attention "none"): the decoder sees ` +
                      `only the encoder's final state, so there is no matrix to show.</p>`;
  const cols = shownIndices(srcTokens);
  const rows = shownIndices(outTokens);
  const head = cols.map((c) => `<th scope="col" class="lv-colhead">${escapeHtml(srcTokens[c].label)}</th>`).join("");
  const body = rows.map((r) => `<tr class="${r === focusRow ? "lv-row-focus" : ""}" data-token="${r}">` +
    `<th scope="row" class="lv-rowhead">${escapeHtml(outTokens[r].label)}</th>` +
    cols.map((c) => `<td style="background:${cividis(matrix[r][c])}" title="${escapeHtml(outTokens[r].label)} → ` +
      `${escapeHtml(srcTokens[c].label)}: ${matrix[r][c].toFixed(3)}">${matrix[r][c] >= 0.1 ?
        `<span style="color:${textColourOn(matrix[r][c])}">${matrix[r][c].toFixed(1)}</span>` : ""}</td>`).join("") +
    `</tr>`).join("");
  return `<table class="lv-heatmap" aria-label="${escapeHtml(label)}"><thead><tr><th scope="col">` +
         `<span class="lv-hidden">output ↓, source →</span></th>${head}</tr></thead>` +
         `<tbody>${body}</tbody></table>`;
}

const CELL = 30, CHAR = 7;

// The word-level attention as a standalone SVG (white background, the page's cividis scale and
// numbers), for a slide or a handout; the rows and columns shown in the page (</s> hidden or not).
function heatmapSvg(matrix, outTokens, srcTokens, title) {
  const cols = shownIndices(srcTokens);
  const rows = shownIndices(outTokens);
  const left = 16 + CHAR * Math.max(...rows.map((r) => outTokens[r].label.length));
  const top = 40 + CHAR * Math.max(...cols.map((c) => srcTokens[c].label.length));
  const width = Math.max(left + CELL * cols.length, 8 + CHAR * title.length) + 16;
  const height = top + CELL * rows.length + 16;
  const cells = rows.map((r, y) => cols.map((c, x) => {
    const w = matrix[r][c];
    return `<rect x="${left + x * CELL}" y="${top + y * CELL}" width="${CELL}" height="${CELL}" fill="${cividis(w)}">` +
      `<title>${escapeHtml(outTokens[r].label)} → ${escapeHtml(srcTokens[c].label)}: ${w.toFixed(3)}</title></rect>` +
      (w >= 0.1 ? `<text x="${left + x * CELL + CELL / 2}" y="${top + y * CELL + CELL / 2 + 4}" text-anchor="middle" ` +
        `fill="${textColourOn(w)}">${w.toFixed(1)}</text>` : "");
  }).join("")).join("");
  const rowLabels = rows.map((r, y) => `<text x="${left - 6}" y="${top + y * CELL + CELL / 2 + 4}" text-anchor="end">` +
    `${escapeHtml(outTokens[r].label)}</text>`).join("");
  const colLabels = cols.map((c, x) => `<text transform="translate(${left + x * CELL + CELL / 2 + 4},${top - 6}) ` +
    `rotate(-90)">${escapeHtml(srcTokens[c].label)}</text>`).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" ` +
    `aria-label="${escapeHtml(title)}"><rect width="100%" height="100%" fill="#fff"/>` +
    `<style>text{font:12px sans-serif;fill:#111}</style><text x="8" y="18" font-weight="700">` +
    `${escapeHtml(title)}</text>${cells}${rowLabels}${colLabels}</svg>`;
}

// Download the attention heatmap shown as SVG, or as PNG (the SVG drawn on a canvas at 2x).
async function downloadAttention(format) {
  const value = viewValue();
  const shown = value && currentView(value);
  if (!shown || !shown.matrix) return;
  const svg = heatmapSvg(shown.matrix, shown.outTokens, shown.srcTokens, shown.label);
  if (format === "svg") {
    saveBlob(new Blob([svg], { type: "image/svg+xml" }), fileName(value, "attention.svg"));
    return;
  }
  const image = new Image();
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width * 2;
  canvas.height = image.height * 2;
  const context = canvas.getContext("2d");
  context.scale(2, 2);
  context.drawImage(image, 0, 0);
  canvas.toBlob((blob) => saveBlob(blob, fileName(value, "attention.png")), "image/png");
}

// Saliency beside attention: gradient attributions of the same output (server.saliency),
// computed on request and kept per hypothesis and method until the next result.
function saliencyKey(method) { return `${state.column}:${state.hypothesis}:${method}`; }

function saliencyBar(attention) {
  const buttons = Object.entries(SALIENCY_METHODS).map(([method, label]) =>
    `<button type="button" class="lv-saliency-go" data-method="${method}">${escapeHtml(label)}</button>`).join(" ");
  return `<span class="lv-saliency-bar">Saliency ${attention ? "beside it" : "(this model has no attention)"}: ${buttons}</span>`;
}

function saliencyMatrix(outTokens, srcTokens, focusRow) {
  const entries = Object.keys(SALIENCY_METHODS).map((m) => [m, state.saliency.get(saliencyKey(m))]).filter(([, r]) => r);
  if (!entries.length) return "";
  const [method, result] = entries[entries.length - 1];
  if (result === "pending") {
    const hyp = hypothesisOf(viewValue(), state.column, state.hypothesis);
    const work = method === "integrated_gradients" ? `${hyp.ids.length} output pieces × its steps` :
      `${hyp.ids.length} output pieces`;
    return `<p class="lv-note" role="status">Computing ${SALIENCY_METHODS[method]} (${work}): ` +
      `<span class="lv-elapsed">0</span> s…</p>`;
  }
  const matrix = tokenMatrix(result.relevance, outTokens, srcTokens);
  const meanCorrelation = result.rank_correlation ?
    result.rank_correlation.reduce((a, b) => a + b, 0) / result.rank_correlation.length : null;
  const agreement = result.agreement === null ? `<div class="lv-note">This model has no attention: saliency is ` +
    `the only map of which source words its output depends on.</div>` : `<div class="lv-note">For ` +
    `${Math.round(result.agreement * 100)}% of the output pieces the most relevant source piece is also the most ` +
    `attended one; the rows' rank correlation (Spearman) is ${meanCorrelation.toFixed(2)} on average.</div>`;
  const meaning = `<div class="lv-note">Attention is where the decoder looked; saliency is how much each source ` +
    `word moves the output word's probability (gradients). They can disagree: the encoder's states mix the whole ` +
    `sentence, so the decoder can look at one place (often &lt;/s&gt;) and read information from another.</div>`;
  return `<div class="lv-matrix" tabindex="0"><div class="lv-caption">Saliency: ${escapeHtml(SALIENCY_METHODS[method])} ` +
    `(share of |attribution| per output word)</div>${heatmap(matrix, outTokens, srcTokens, focusRow,
      `saliency by ${SALIENCY_METHODS[method]}`)}${agreement}${meaning}</div>`;
}

async function computeSaliency(method) {
  const value = viewValue();
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const key = saliencyKey(method);
  state.saliency.set(key, "pending");
  render();
  const started = Date.now();
  const ticking = setInterval(() => {
    const shown = element.querySelector(".lv-elapsed");
    if (shown) shown.textContent = String(Math.round((Date.now() - started) / 1000));
  }, 500);
  try {
    const answer = JSON.parse(await server.saliency({ model: value.model, source: value.source, ids: hyp.ids, method }));
    if (answer.error) { state.saliency.delete(key); state.message = answer.error; } else state.saliency.set(key, answer.saliency);
  } catch (error) {
    state.saliency.delete(key);
    state.message = `Saliency failed: ${error}`;
  } finally {
    clearInterval(ticking);
  }
  render();
}
