// The explorer's linked view (s2s/ui/linked_view.py): draws one sentence's results in the page.
// Gradio runs this body once per component with `element`, `props`, `server` and `watch` in
// scope; `props.value` is the JSON text sent by the server (view_value), read through viewValue(),
// and the server functions answer JSON text too.
// Hover, selection, the word / piece switch, alternatives and stepping are all local: only a
// re-decode calls the server.

const CIVIDIS = ["#00204c", "#213d6b", "#4c546c", "#6f6f73", "#948b78", "#bcaf6f", "#e4cf5b", "#ffe945"];
// The server's JSON text, parsed once per new value.
let parsedText = null, parsedValue = null;
function viewValue() {
  if (props.value !== parsedText) {
    parsedText = props.value;
    parsedValue = typeof parsedText === "string" && parsedText ? JSON.parse(parsedText) : null;
  }
  return parsedValue;
}

const state = { column: 1, hypothesis: 0, focus: null, pinned: null, pieces: false, hideEos: false,
                edits: [], busy: false, message: "", steer: new Set(), steerMode: "only", saliency: new Map(),
                focusAlternatives: false };
// How the chosen source words change the step's attention: only there (even), or the model's
// own weights scaled there, renormalised.
const STEER_MODES = { only: "look only there", boost: "× 3 there", remove: "× 0 there (look elsewhere)" };
const SALIENCY_METHODS = { integrated_gradients: "integrated gradients", input_x_gradient: "input × gradient" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// The cividis colour of t in [0, 1] as [r, g, b].
function cividisRgb(t) {
  const x = Math.min(1, Math.max(0, t)) * (CIVIDIS.length - 1);
  const i = Math.min(CIVIDIS.length - 2, Math.floor(x));
  const mix = (a, b) => Math.round(a + (b - a) * (x - i));
  const [a, b] = [CIVIDIS[i], CIVIDIS[i + 1]].map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
  return [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])];
}

function cividis(t) { return `rgb(${cividisRgb(t).join(", ")})`; }

// Black or white, whichever contrasts more with cividis(t): at least 4.5:1 on every colour of the
// scale (WCAG's relative luminance; black wins above 0.179).
function textColourOn(t) {
  const [r, g, b] = cividisRgb(t).map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? "#000" : "#fff";
}

function pieceLabel(piece) {
  if (piece === "</s>") return "</s>";
  const label = piece.replace(/▁/g, " ").trim();
  return label || "␣";
}

// A hypothesis (or the source, see sourceOf) -> display tokens: its words as the server grouped
// them (s2s.tokenizer.merge_pieces: sentence punctuation apart, bytes joined into characters, a
// bare "▁" never a word of its own), or one token per piece when the "pieces" switch is on. Each
// token lists the piece indices it covers.
function tokensOf(item) {
  if (!state.pieces && item.words) {
    return item.words.map((word) => ({ label: word.text, pieces: word.pieces, eos: word.text === "</s>" }));
  }
  return item.pieces.map((piece, index) => ({ label: pieceLabel(piece), pieces: [index], eos: piece === "</s>" }));
}

function sourceOf(value) {
  return { pieces: value.source_pieces, words: value.source_words };
}

// Positions are counted in the unit shown: words, or pieces under the "pieces" switch.
function unit() { return state.pieces ? "piece" : "word"; }

// "word 3 “tient”": the shown token of `item` that holds piece `piece`, numbered from 1.
function positionLabel(item, piece) {
  const tokens = tokensOf(item);
  const index = tokens.findIndex((t) => t.pieces.includes(piece));
  return index < 0 ? `${unit()} ?` : `${unit()} ${index + 1} “${escapeHtml(tokens[index].label)}”`;
}

function hypothesisOf(value, column, index) {
  const hyps = value.columns[column].hypotheses;
  return hyps[Math.min(index, hyps.length - 1)];
}

// A piece-level matrix (attention or saliency) at word level: rows averaged over an output
// token's pieces, columns summed over a source token's pieces, so each row still sums to 1.
function tokenMatrix(matrix, outTokens, srcTokens) {
  if (!matrix) return null;
  return outTokens.map((out) => srcTokens.map((src) => {
    let total = 0;
    out.pieces.forEach((r) => src.pieces.forEach((c) => { total += matrix[r][c]; }));
    return total / out.pieces.length;
  }));
}

function tokenProbability(hyp, token) {
  return Math.exp(token.pieces.reduce((sum, i) => sum + hyp.token_logprobs[i], 0));
}

function verdictLine(value) {
  if (value.columns.length < 2) return "";
  const [a, b] = value.columns.map((c) => c.hypotheses[0]);
  const [la, lb] = value.columns.map((c) => c.label.toLowerCase());
  if (a.text === b.text) return `<b>Same output:</b> ${escapeHtml(la)} and ${escapeHtml(lb)} agree.`;
  const [better, worse, margin] = b.normalized_score >= a.normalized_score
    ? [lb, la, b.normalized_score - a.normalized_score] : [la, lb, a.normalized_score - b.normalized_score];
  return `<b>Different outputs:</b> ${escapeHtml(better)} scores higher than ${escapeHtml(worse)} by ` +
         `${margin.toFixed(3)} (normalised log-probability).`;
}

function outputStrip(column, hyp, tokens, extraClass) {
  const forced = hyp.forced || 0;
  return tokens.filter((t) => !(state.hideEos && t.eos)).map((token) => {
    const index = tokens.indexOf(token);
    const p = tokenProbability(hyp, token);
    const isForced = token.pieces[0] < forced;
    const focus = state.focus && state.focus.kind === "out" && state.focus.column === column &&
                  state.focus.token === index;
    return `<button type="button" class="lv-tok lv-out ${extraClass}${isForced ? " lv-forced" : ""}` +
           `${focus ? " lv-focus" : ""}" data-column="${column}" data-token="${index}" ` +
           `tabindex="${index === 0 && column >= 0 ? 0 : -1}" ` +
           `style="background:${cividis(p)};color:${textColourOn(p)}" ` +
           `title="${escapeHtml(token.label)}: p = ${p.toFixed(3)}${isForced ? " (forced)" : ""}; click for alternatives" ` +
           `aria-label="${escapeHtml(token.label)}, probability ${p.toFixed(2)}">` +
           `<span class="lv-word">${escapeHtml(token.label)}</span><span class="lv-p">${p.toFixed(2)}</span></button>`;
  }).join("");
}

// A text of several sentences: its whole translation, each sentence a button that shows it below
// (through the page's sentence picker, which asks the server for that sentence's view).
function paragraphLine(value) {
  if (!value.paragraph) return "";
  return `<div class="lv-paragraph" aria-label="the whole translation"><span class="lv-caption">Whole translation ` +
    `(click a sentence to explain it)</span>${value.paragraph.map((sentence, index) =>
      `<button type="button" class="lv-sentence${sentence.shown ? " lv-selected" : ""}" data-sentence="${index}" ` +
      `title="${escapeHtml(sentence.source)}">${escapeHtml(sentence.text)}</button>`).join(" ")}</div>`;
}

function shownSaliency() {
  const found = Object.keys(SALIENCY_METHODS).map((m) => state.saliency.get(saliencyKey(m)))
    .filter((r) => r && r !== "pending");
  return found.length ? found[found.length - 1] : null;
}

function sourceStrip(srcTokens, weights, salient) {
  return srcTokens.filter((t) => !(state.hideEos && t.eos)).map((token) => {
    const index = srcTokens.indexOf(token);
    const w = weights ? weights[index] : 0;
    const style = weights ? `background:${cividis(w)};color:${textColourOn(w)}` : "";
    const title = token.eos ? "end of sentence: the model often looks here when the output is complete or " +
                              "when no source word is a better fit" : token.label;
    const steering = state.steer.has(index) ? " lv-steer-on" : "";
    const s = salient ? salient[index] : null;
    return `<span class="lv-tok lv-src${token.eos ? " lv-eos" : ""}${steering}" data-token="${index}" style="${style}" ` +
           `title="${escapeHtml(title)}${weights ? `: attention ${w.toFixed(2)}` : ""}${s !== null ? `, saliency ${s.toFixed(2)}` : ""}">` +
           `${escapeHtml(token.label)}${weights ? `<span class="lv-p">${w.toFixed(2)}${s !== null ? ` · s ${s.toFixed(2)}` : ""}</span>` : ""}</span>`;
  }).join("");
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

function alternativesPanel(value, column, hyp, outTokens, tokenIndex) {
  const token = outTokens[tokenIndex];
  if (!token) return "";
  const position = token.pieces[0];
  const alternatives = hyp.alternatives[position] || [];
  if (!alternatives.length) return `<p class="lv-note">No alternatives were recorded (the setting "alternatives" is 0).</p>`;
  const chosen = hyp.ids[position];
  // A bare "▁" is no word: the chosen one stands for its word, another is not offered.
  const shown = alternatives.filter((alt) => alt.id === chosen || pieceLabel(alt.piece) !== "␣");
  const bars = shown.map((alt) => {
    const p = Math.exp(alt.logprob);
    const isChosen = alt.id === chosen;
    const altLabel = isChosen && !state.pieces ? token.label : pieceLabel(alt.piece);
    return `<button type="button" class="lv-alt${isChosen ? " lv-alt-chosen" : ""}" data-id="${alt.id}" ` +
           `title="${isChosen ? "the piece in this output" : "re-decode with this piece here"}">` +
           `<span class="lv-alt-label">${escapeHtml(altLabel)}${isChosen ? " ✓" : ""}</span>` +
           `<span class="lv-alt-bar" style="width:${Math.max(1, p * 100).toFixed(1)}%"></span>` +
           `<span class="lv-alt-p">${p.toFixed(3)}</span></button>`;
  }).join("");
  const stepInfo = prunedAt(value, column, hyp, position);
  const before = outTokens.slice(0, tokenIndex).map((t) => t.label).join(" ");
  const firstPiece = token.pieces.length > 1 && !state.pieces ?
    ` (the alternatives to its first piece “${escapeHtml(pieceLabel(hyp.pieces[position]))}”)` : "";
  return `<div class="lv-alts" aria-label="alternatives"><div class="lv-alts-head"><button type="button" ` +
         `class="lv-edit-close lv-unpin" aria-label="close (Escape)" title="close (Escape)">×</button>` +
         `What else at ${unit()} ${tokenIndex + 1} “${escapeHtml(token.label)}”${firstPiece}, after ` +
         `“${escapeHtml(before || "(start)")}”: the model's top ${shown.length}:</div>${bars}` +
         `<form class="lv-typed"><input name="word" maxlength="100" placeholder="or type a word" aria-label="word to put here">` +
         `<button type="submit">Re-decode</button></form>${stepInfo}${steerPanel(value, hyp)}</div>`;
}

// Attention steering: the source words clicked while a word is pinned are where the decoder
// looks at that step (weight spread evenly over their pieces); the output before it is kept.
function steerPanel(value, hyp) {
  if (!hyp.attention) return `<p class="lv-note">This model has no attention to steer.</p>`;
  const srcTokens = tokensOf(sourceOf(value));
  const chosen = [...state.steer].sort((a, b) => a - b).map((i) => srcTokens[i].label);
  const modes = Object.entries(STEER_MODES).map(([mode, label]) =>
    `<option value="${mode}"${mode === state.steerMode ? " selected" : ""}>${escapeHtml(label)}</option>`).join("");
  return `<div class="lv-steer"><div class="lv-alts-head">Or steer the attention at this step: click source ` +
         `words above${chosen.length ? ` (chosen: “${escapeHtml(chosen.join(" "))}”)` : ""}, then</div>` +
         `<select class="lv-steer-mode" aria-label="how to change the attention">${modes}</select> ` +
         `<button type="button" class="lv-steer-go"${chosen.length ? "" : " disabled"}>Re-decode looking there</button></div>`;
}

// Beam search's back-pointers (hyp.parent_slots, see s2s.search.Hypothesis): token t extends
// the prefix that sat in slot parent_slots[t] after step t - 1, and itself sits in slot
// parent_slots[t + 1] of trace[t].alive (for every token but the final </s>).
function slotAtStep(hyp, t) {
  return hyp.parent_slots[t + 1];
}

// For beam search: the candidates scored at this step and dropped from the beam.
function prunedAt(value, column, hyp, position) {
  const trace = value.columns[column].trace;
  if (!trace || !trace[position] || !hyp.parent_slots.length) return "";
  const slot = hyp.parent_slots[position];
  const pruned = trace[position].pruned.filter((c) => c.parent === slot);
  if (!pruned.length) return "";
  return `<div class="lv-pruned">Scored from this prefix at ${positionLabel(hyp, position)} and pruned (score too low to ` +
         `stay in the beam): ${pruned.map((c) => `<span>${escapeHtml(pieceLabel(c.piece))} ` +
         `<small>${c.score.toFixed(2)}</small></span>`).join(" ")}</div>`;
}

// The beam search as a prefix tree (beamTree, below): a node per kept prefix (step, slot),
// branches ordered by the best hypothesis they lead to, finished hypotheses as squares at the step
// they ended, and — at the step shown by the slider — the candidates that were scored and pruned,
// faded. Grown only up to that step.

// Whether the finished candidate `end` (of the trace) is hypothesis `hyp`'s last step.
function endsAt(hyp, end) {
  return end.parent === hyp.parent_slots[hyp.parent_slots.length - 1] && Math.abs(end.score - hyp.score) < 1e-4;
}

// Inside the SVG, so that a downloaded tree looks the same outside the page.
const TREE_STYLE = "text{font:11px sans-serif;fill:currentColor}.lv-edge{fill:none;stroke:#8a8f98;stroke-width:1}" +
  ".lv-edge-path{stroke:#d9480f;stroke-width:2.5}.lv-edge-pruned{stroke-dasharray:3 2;opacity:.5}" +
  ".lv-node circle,.lv-node rect{fill:#4c546c}.lv-node-finished rect{fill:#2b8a3e}.lv-node-pruned{opacity:.45}" +
  ".lv-node-path circle,.lv-node-path rect{fill:#d9480f}.lv-node-path text{font-weight:700}";

// A file name that says what it holds: s2s-MODEL-first-source-words-WHAT.EXT
function fileName(value, what) {
  const words = value.source.replace(/[^\p{L}\p{N}]+/gu, "-").replace(/^-|-$/g, "").slice(0, 40);
  return `s2s-${value.model}-${words}-${what}`;
}

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function downloadTree() {
  const svg = element.querySelector(".lv-tree");
  if (!svg || !viewValue()) return;
  saveBlob(new Blob([svg.outerHTML], { type: "image/svg+xml" }), fileName(viewValue(), "beam-tree.svg"));
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

const TREE_ROW = 16, TREE_COLUMN = 74, TREE_LABEL = 9;

function beamTree(column, hyp, upToStep) {
  const trace = column.trace;
  if (!trace) return "";
  const nodes = new Map();  // id -> {id, step, label, piece, score, kind, children, parent}
  const root = { id: "root", step: -1, label: "<s>", piece: "<s>", score: 0, kind: "root", children: [] };
  nodes.set("root", root);
  const add = (node, parentId) => {
    const parent = nodes.get(parentId);
    if (!parent) return;
    node.children = [];
    node.parent = parent;
    parent.children.push(node);
    nodes.set(node.id, node);
  };
  trace.forEach((step) => {
    if (upToStep !== null && step.step > upToStep) return;
    const parentOf = (slot) => (step.step === 0 ? "root" : `${step.step - 1}:${slot}`);
    step.alive.forEach((c) => add({ id: `${step.step}:${c.slot}`, step: step.step, piece: c.piece,
                                    score: c.score, kind: "alive" }, parentOf(c.parent)));
    step.finished.forEach((c, i) => add({ id: `${step.step}:f${i}`, step: step.step, piece: "</s>", score: c.score,
                                          normalized: c.normalized_score, kind: "finished" }, parentOf(c.parent)));
    if (step.step === upToStep) {
      step.pruned.forEach((c, i) => add({ id: `${step.step}:p${i}`, step: step.step, piece: c.piece, score: c.score,
                                          kind: "pruned" }, parentOf(c.parent)));
    }
  });
  // The selected hypothesis's path, from its back-pointers.
  const path = new Set(["root"]);
  if (hyp.parent_slots.length) {
    for (let t = 0; t + 1 < hyp.parent_slots.length; t++) path.add(`${t}:${slotAtStep(hyp, t)}`);
    const last = trace[hyp.ids.length - 1];
    if (last) {
      const i = last.finished.findIndex((c) => endsAt(hyp, c));
      if (i >= 0) path.add(`${hyp.ids.length - 1}:f${i}`);
    }
  }
  // Branches in score order: first by the best hypothesis they end in (normalised score, as the
  // n-best is ranked), then, for branches that end in none shown, by the prefix's log-prob. So the
  // best hypothesis runs along the top row and the n-best follow, with the prefixes the search
  // dropped below them. Leaves get consecutive rows; a parent sits at its first child's row.
  const bestEnd = (node) => {
    if (node.bestEnd === undefined) {
      node.bestEnd = node.kind === "finished" ? node.normalized : Math.max(-Infinity, ...node.children.map(bestEnd));
    }
    return node.bestEnd;
  };
  const ranked = (a, b) => (bestEnd(b) === bestEnd(a) ? b.score - a.score : bestEnd(b) - bestEnd(a));
  let row = 0;
  const place = (node) => {
    node.children.sort(ranked);
    node.children.forEach(place);
    node.row = node.children.length ? node.children[0].row : row++;
  };
  place(root);
  const width = (Math.max(...[...nodes.values()].map((n) => n.step)) + 2) * TREE_COLUMN + 80;
  const height = row * TREE_ROW + 20;
  const x = (n) => 20 + (n.step + 1) * TREE_COLUMN;
  const y = (n) => 12 + n.row * TREE_ROW;
  let edges = "", marks = "";
  nodes.forEach((n) => {
    const onPath = path.has(n.id);
    const cls = `lv-node lv-node-${n.kind}${onPath ? " lv-node-path" : ""}`;
    if (n.parent) {
      const px = x(n.parent), py = y(n.parent);
      edges += `<path class="lv-edge${onPath && path.has(n.parent.id) ? " lv-edge-path" : ""}${n.kind === "pruned" ?
        " lv-edge-pruned" : ""}" d="M${px},${py} H${px + TREE_COLUMN / 2} V${y(n)} H${x(n)}"/>`;
    }
    const label = pieceLabel(n.piece);
    const short = label.length > TREE_LABEL ? `${label.slice(0, TREE_LABEL - 1)}…` : label;
    const tip = `${label} · step ${n.step + 1} · log-prob ${n.score.toFixed(2)}` +
                (n.kind === "finished" ? ` · normalised ${n.normalized.toFixed(3)}` : "") +
                (n.kind === "pruned" ? " · pruned here" : "");
    const mark = n.kind === "finished" ? `<rect x="${x(n) - 4}" y="${y(n) - 4}" width="8" height="8"/>` :
                 `<circle cx="${x(n)}" cy="${y(n)}" r="${n.kind === "root" ? 5 : 4}"/>`;
    marks += `<g class="${cls}" data-node="${n.id}"><title>${escapeHtml(tip)}</title>${mark}` +
             `<text x="${x(n) + 6}" y="${y(n) - 3}">${escapeHtml(short)}</text></g>`;
  });
  return `<div class="lv-tree-wrap"><div class="lv-tree-head"><div class="lv-caption">Beam search tree ` +
         `(${column.label}): prefixes shared ` +
         `by hypotheses share nodes; the best hypothesis on top, then the branches to the others, then the dropped ` +
         `prefixes; squares end a hypothesis; the selected ` +
         `hypothesis in orange${upToStep !== null ? `; grown to ${positionLabel(hyp, upToStep)}, with the ` +
         `candidates pruned there faded` : ""}.</div><button type="button" class="lv-download">Download SVG</button></div><svg class="lv-tree" width="${width}" height="${height}" role="img" ` +
         `aria-label="beam search tree" xmlns="http://www.w3.org/2000/svg"><style>${TREE_STYLE}</style>${edges}${marks}</svg></div>`;
}

function editsPanel(srcTokens) {
  return state.edits.map((edit, n) => {
    const hyp = edit.sentence.hypotheses[0];
    const tokens = tokensOf(hyp);
    const delta = hyp.normalized_score - edit.original.normalized_score;
    if (edit.scored) {
      const best = edit.original;
      return `<div class="lv-edit lv-scored"><div class="lv-edit-head">Your translation, scored by the model ` +
        `(${escapeHtml(edit.label)}'s settings): ${hyp.normalized_score.toFixed(3)} against its own output's ` +
        `${best.normalized_score.toFixed(3)} (${delta >= 0 ? "+" : ""}${delta.toFixed(3)}: ${delta >= 0 ?
          "the model would rank yours at least as high" : "the model prefers its own"}). Each word shows the ` +
        `probability the model gives it there: the least likely are where it disagrees. <button type="button" ` +
        `class="lv-edit-close" data-edit="${n}" aria-label="remove">×</button></div>` +
        `<div class="lv-strip">${outputStrip(-1, { ...hyp, forced: 0 }, tokens, "lv-edited")}</div>` +
        `${hyp.attention ? `<div class="lv-matrix lv-edit-matrix">${heatmap(tokenMatrix(hyp.attention, tokens, srcTokens),
          tokens, srcTokens, null, "attention while reading your translation")}</div>` : ""}</div>`;
    }
    const what = edit.steered ? `${escapeHtml(edit.steered)} at ${positionLabel(hyp, edit.sentence.steered[0])}` +
      (edit.sentence.prefix ? ` after “${escapeHtml(edit.sentence.prefix)}”` : "") :
      `forced “${escapeHtml(edit.sentence.prefix)}”`;
    const steeredRow = edit.sentence.steered.length ?
      tokens.findIndex((t) => t.pieces.includes(edit.sentence.steered[0])) : null;
    const matrix = edit.steered ? heatmap(tokenMatrix(hyp.attention, tokens, srcTokens), tokens, srcTokens, steeredRow,
                                          `attention of edit ${n + 1}, the steered row marked`) : "";
    return `<div class="lv-edit"><div class="lv-edit-head">Edit ${n + 1} (${escapeHtml(edit.label)}): ${what}, ` +
           `the rest decoded again. Score ${hyp.normalized_score.toFixed(3)} ` +
           `against the original's ${edit.original.normalized_score.toFixed(3)} ` +
           `(${delta >= 0 ? "+" : ""}${delta.toFixed(3)}: the model ${delta > 0 ? "prefers the edit" :
             "preferred its own output"}). <button type="button" class="lv-edit-close" data-edit="${n}" ` +
           `aria-label="remove this edit">×</button></div>` +
           `<div class="lv-strip">${outputStrip(-1, hyp, tokens, "lv-edited")}</div>` +
           `${matrix ? `<div class="lv-matrix lv-edit-matrix">${matrix}</div>` : ""}</div>`;
  }).join("");
}

function render() {
  const root = element.querySelector(".lv");
  const value = viewValue();
  if (!root) return;
  if (!value || !value.columns || !value.columns.length) {
    root.innerHTML = `<p class="lv-note">Translate a sentence to see the linked view.</p>`;
    return;
  }
  state.column = Math.min(state.column, value.columns.length - 1);
  const { srcTokens, hyp, outTokens, matrix, label } = currentView(value);
  const columnHyp = (c) => hypothesisOf(value, c, c === state.column ? state.hypothesis : 0);
  const focus = state.pinned || state.focus;
  let sourceWeights = null;
  let focusRow = null;
  let salientWeights = null;
  const salient = shownSaliency();
  const saliencyRows = salient ? tokenMatrix(salient.relevance, outTokens, srcTokens) : null;
  if (focus && focus.kind === "out" && focus.column === state.column && (matrix || saliencyRows)) {
    focusRow = focus.token;
    sourceWeights = matrix ? matrix[focus.token] : saliencyRows[focus.token];
    salientWeights = matrix && saliencyRows ? saliencyRows[focus.token] : null;
  }
  const columns = value.columns.map((col, c) => {
    const h = columnHyp(c);
    const tokens = tokensOf(h);
    const nbest = col.hypotheses.length > 1 ? `<ol class="lv-nbest" aria-label="n-best list">` +
      col.hypotheses.map((x, i) => `<li><button type="button" class="lv-nbest-row${c === state.column &&
        i === state.hypothesis ? " lv-selected" : ""}" data-column="${c}" data-hypothesis="${i}">` +
        `<span class="lv-nbest-text" title="${escapeHtml(x.text)}">${i + 1}. ${escapeHtml(x.text)}</span><span class="lv-nbest-score">` +
        `${x.normalized_score.toFixed(3)}</span></button></li>`).join("") + `</ol>` : "";
    const prefixNote = col.prefix ? `<div class="lv-note">Forced prefix “${escapeHtml(col.prefix)}” applied here ` +
                                    `(underlined pieces).</div>` : "";
    return `<section class="lv-col${c === state.column ? " lv-col-active" : ""}" data-column="${c}">` +
      `<h2>${escapeHtml(col.label)} <small>#${(c === state.column ? state.hypothesis : 0) + 1} · score ` +
      `${h.normalized_score.toFixed(3)} · log-prob ${h.score.toFixed(2)}</small></h2>${prefixNote}` +
      `<div class="lv-strip">${outputStrip(c, h, tokens, "")}</div>${nbest}</section>`;
  }).join("");
  const pinned = state.pinned && state.pinned.column === state.column ? state.pinned.token : null;
  const steps = outTokens.length;
  const saliencyShown = Object.keys(SALIENCY_METHODS).some((m) => state.saliency.has(saliencyKey(m)));
  // Two columns: the outputs; beside them the answers to clicks and the heatmap (and saliency, side
  // by side).
  root.innerHTML = paragraphLine(value) +
    `<div class="lv-bar"><span class="lv-verdict">${verdictLine(value)}</span>` +
    `<label><input type="checkbox" class="lv-pieces"${state.pieces ? " checked" : ""}> pieces</label>` +
    `<label title="</s> is the end-of-sentence token; attention often rests on it"><input type="checkbox" ` +
    `class="lv-hide-eos"${state.hideEos ? " checked" : ""}> hide &lt;/s&gt;</label></div>` +
    `<div class="lv-main${saliencyShown ? " lv-main-wide" : ""}"><div class="lv-left">` +
    `<div class="lv-source-line"><span class="lv-caption">Source</span>${sourceStrip(srcTokens, sourceWeights, salientWeights)}</div>` +
    `<div class="lv-cols">${columns}</div>` +
    `<div class="lv-step"><label>${state.pieces ? "Piece" : "Word"} <input type="range" class="lv-step-range" min="0" max="${steps - 1}" ` +
    `value="${pinned ?? 0}" aria-label="output step"></label><span class="lv-step-label">${pinned === null ? "hover a word to see where it looks; " +
      "click it (or move the slider) for what else the model could have said there" :
      `${unit()} ${pinned + 1} of ${steps}: “${escapeHtml(outTokens[pinned].label)}”`}</span></div>` +
    `<form class="lv-score"><input name="target" maxlength="5000" placeholder="Type your own translation to see how ` +
    `the model scores it" aria-label="your translation"><button type="submit">Score my translation</button></form>` +
    `</div>` +
    // Every answer to a click (alternatives, edits, steering, a scored translation) comes here: above
    // the heatmap, beside the words clicked; under the outputs on a narrow window.
    `<div class="lv-answer" aria-live="polite">${state.busy ? `<p class="lv-note">Re-decoding…</p>` : ""}` +
    `${state.message ? `<p class="lv-error">${escapeHtml(state.message)}</p>` : ""}` +
    `${editsPanel(srcTokens)}` +
    `${pinned === null ? "" : alternativesPanel(value, state.column, hyp, outTokens, pinned)}</div>` +
    `<div class="lv-right"><div class="lv-right-head">${matrix ? `<span class="lv-caption">Attention ` +
      `<button type="button" class="lv-export" data-format="svg" title="download this heatmap as SVG">SVG</button>` +
      `<button type="button" class="lv-export" data-format="png" title="download this heatmap as PNG">PNG</button>` +
      `</span>` : ""}${saliencyBar(matrix)}</div><div class="lv-matrices"><div class="lv-matrix">` +
    `${heatmap(matrix, outTokens, srcTokens, focusRow, label)}</div>` +
    `${saliencyMatrix(outTokens, srcTokens, focusRow)}</div></div></div>` + treeFor(value, outTokens, pinned);
  revealSelectedBranch(root);
  highlightFromSource(null);
  if (state.focusAlternatives) {
    state.focusAlternatives = false;
    const first = root.querySelector(".lv-alt");
    if (first) first.focus();
  }
}

// A redrawn tree is scrolled to its top left; where the selected hypothesis's own branch (the
// part on the row where it ends) lies beyond that (a lower n-best row at a wide beam), scroll the
// tree so that the branch's start is in view.
function revealSelectedBranch(root) {
  const wrap = root.querySelector(".lv-tree-wrap");
  const marks = wrap ? [...wrap.querySelectorAll(".lv-node-path circle, .lv-node-path rect")].map((mark) =>
    mark.tagName === "circle" ? { x: +mark.getAttribute("cx"), y: +mark.getAttribute("cy") } :
      { x: +mark.getAttribute("x") + 4, y: +mark.getAttribute("y") + 4 }) : [];
  if (!marks.length) return;
  const end = marks[marks.length - 1];
  const branch = marks.find((mark) => mark.y === end.y);
  if (end.y > wrap.clientHeight * 0.6) wrap.scrollTop = end.y - wrap.clientHeight / 2;
  if (branch.x > wrap.clientWidth * 0.75) wrap.scrollLeft = branch.x - wrap.clientWidth / 4;
}

// The selected hypothesis and its word- (or piece-) level attention, as every view shows it.
function currentView(value) {
  const srcTokens = tokensOf(sourceOf(value));
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const outTokens = tokensOf(hyp);
  return { srcTokens, hyp, outTokens, matrix: tokenMatrix(hyp.attention, outTokens, srcTokens),
           label: `attention of ${value.columns[state.column].label} hypothesis ${state.hypothesis + 1}: ${hyp.text}` };
}

function treeFor(value, outTokens, pinned) {
  const beam = value.columns.findIndex((c) => c.trace);
  if (beam < 0) return "";
  const hyp = hypothesisOf(value, beam, beam === state.column ? state.hypothesis : 0);
  const step = pinned !== null && beam === state.column ? outTokens[pinned].pieces[0] : null;
  return beamTree(value.columns[beam], hyp, step);
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
  if (result === "pending") return `<p class="lv-note">Computing ${SALIENCY_METHODS[method]}…</p>`;
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
  return `<div class="lv-matrix"><div class="lv-caption">Saliency: ${escapeHtml(SALIENCY_METHODS[method])} ` +
    `(share of |attribution| per output word)</div>${heatmap(matrix, outTokens, srcTokens, focusRow,
      `saliency by ${SALIENCY_METHODS[method]}`)}${agreement}${meaning}</div>`;
}

async function computeSaliency(method) {
  const value = viewValue();
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const key = saliencyKey(method);
  state.saliency.set(key, "pending");
  render();
  try {
    const answer = JSON.parse(await server.saliency({ model: value.model, source: value.source, ids: hyp.ids, method }));
    if (answer.error) { state.saliency.delete(key); state.message = answer.error; } else state.saliency.set(key, answer.saliency);
  } catch (error) {
    state.saliency.delete(key);
    state.message = `Saliency failed: ${error}`;
  }
  render();
}

// Hovering a source token lights the output tokens of the active column by their attention to it.
function highlightFromSource(sourceToken) {
  const value = viewValue();
  if (!value) return;
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const srcTokens = tokensOf(sourceOf(value));
  const outTokens = tokensOf(hyp);
  const matrix = tokenMatrix(hyp.attention, outTokens, srcTokens);
  element.querySelectorAll(`.lv-col[data-column="${state.column}"] .lv-out`).forEach((node) => {
    const row = Number(node.dataset.token);
    node.classList.toggle("lv-lit", sourceToken !== null && matrix && matrix[row][sourceToken] >= 0.2);
    node.style.outlineWidth = sourceToken !== null && matrix ? `${Math.round(matrix[row][sourceToken] * 4)}px` : "";
  });
}

// A tree node (step:slot): select the best n-best hypothesis whose path passes through it and
// show that step, with its alternatives.
function selectThroughNode(id) {
  const value = viewValue();
  const beam = value.columns.findIndex((c) => c.trace);
  const [stepText, slotText] = id.split(":");
  const step = Number(stepText);
  if (id === "root" || slotText.startsWith("p")) return false;
  const trace = value.columns[beam].trace;
  const index = value.columns[beam].hypotheses.findIndex((h) => slotText.startsWith("f") ?
    h.ids.length - 1 === step && endsAt(h, trace[step].finished[Number(slotText.slice(1))]) :
    h.ids.length - 1 > step && slotAtStep(h, step) === Number(slotText));
  if (index < 0) return false;
  state.column = beam;
  state.hypothesis = index;
  const tokens = tokensOf(value.columns[beam].hypotheses[index]);
  const token = tokens.findIndex((t) => t.pieces.includes(step));
  state.pinned = { kind: "out", column: beam, token };
  state.focus = state.pinned;
  state.message = "";
  render();
  return true;
}

// Re-decode with `change`: {replacement} (a piece id or a word) or {steer} (source piece indices).
async function redecode(change) {
  const value = viewValue();
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const outTokens = tokensOf(hyp);
  const position = outTokens[state.pinned.token].pieces[0];
  const column = value.columns[state.column];
  const srcTokens = tokensOf(sourceOf(value));
  const chosenWords = [...state.steer].sort((a, b) => a - b).map((i) => srcTokens[i].label).join(" ");
  const phrase = { only: "looked only at", boost: "looked 3× more at", remove: "looked away from" }[state.steerMode];
  const steered = change.steer || change.weights ? `${phrase} “${chosenWords}”` : "";
  // The request leaves before the page redraws its busy state, so the two overlap.
  const request = server.redecode({ model: value.model, source: value.source, ids: hyp.ids, position,
                                    source_pieces: value.source_pieces.length, settings: column.settings, ...change });
  state.busy = true;
  state.message = "";
  render();
  try {
    const answer = JSON.parse(await request);
    if (answer.error) {
      state.message = answer.error;
    } else {
      state.edits.unshift({ sentence: answer.sentence, original: hyp, label: column.label, steered });
      state.edits = state.edits.slice(0, 4);  // the latest few edits stay on screen
    }
  } catch (error) {
    state.message = `Re-decoding failed: ${error}`;
  } finally {
    state.busy = false;
    render();
  }
}

element.addEventListener("mouseover", (event) => {
  const out = event.target.closest(".lv-out:not(.lv-edited)");
  const src = event.target.closest(".lv-src");
  if (out && Number(out.dataset.column) === state.column && !state.pinned) {
    const token = Number(out.dataset.token);
    if (state.focus && state.focus.column === state.column && state.focus.token === token) return;
    state.focus = { kind: "out", column: state.column, token };
    render();
  } else if (src) {
    highlightFromSource(Number(src.dataset.token));
  }
});

function unpin() {
  state.pinned = null;
  state.steer.clear();
}

// Keyboard: one Tab stop per output strip, arrow keys between its words, Enter (a click) opens a
// word's alternatives with the focus in them, Escape closes them and returns to the word.
element.addEventListener("keydown", (event) => {
  const out = event.target.closest(".lv-out:not(.lv-edited)");
  if (event.key === "Escape" && state.pinned) {
    const { column, token } = state.pinned;
    unpin();
    render();
    const back = element.querySelector(`.lv-out[data-column="${column}"][data-token="${token}"]`);
    if (back) back.focus();
    event.preventDefault();
  } else if (out && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
    const words = [...out.parentElement.querySelectorAll(".lv-out")];
    const next = words[words.indexOf(out) + (event.key === "ArrowRight" ? 1 : -1)];
    if (next) next.focus();
    event.preventDefault();
  } else if (event.target.closest(".lv-alt") && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    const options = [...element.querySelectorAll(".lv-alt")];
    const next = options[options.indexOf(event.target.closest(".lv-alt")) + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) next.focus();
    event.preventDefault();
  }
});

element.addEventListener("mouseout", (event) => {
  if (event.target.closest(".lv-src")) highlightFromSource(null);
});

element.addEventListener("click", (event) => {
  const target = event.target;
  const out = target.closest(".lv-out:not(.lv-edited)");
  const row = target.closest(".lv-nbest-row");
  const alt = target.closest(".lv-alt");
  const close = target.closest(".lv-edit-close");
  const node = target.closest(".lv-node");
  const method = target.closest(".lv-saliency-go");
  const sentence = target.closest(".lv-sentence");
  if (sentence) {
    const choice = document.querySelectorAll("#sentence-picker label")[Number(sentence.dataset.sentence)];
    if (choice) choice.click();
    return;
  }
  if (method) {
    if (!state.saliency.has(saliencyKey(method.dataset.method))) computeSaliency(method.dataset.method);
    return;
  }
  if (target.closest(".lv-download")) {
    downloadTree();
    return;
  }
  const exportButton = target.closest(".lv-export");
  if (exportButton) {
    downloadAttention(exportButton.dataset.format);
    return;
  }
  if (node) {
    if (!selectThroughNode(node.dataset.node)) {
      state.message = node.classList.contains("lv-node-finished")
        ? "This hypothesis ended here but ranks below the n-best list shown (raise n-best to list it)."
        : "No hypothesis of the n-best list passes through this node: its branch was pruned or ranks lower.";
      render();
    }
    return;
  }
  if (row) {
    state.column = Number(row.dataset.column);
    state.hypothesis = Number(row.dataset.hypothesis);
    state.pinned = null;
  } else if (out) {
    const column = Number(out.dataset.column);
    if (column !== state.column) state.hypothesis = 0;
    state.column = column;
    const token = Number(out.dataset.token);
    state.steer.clear();  // a steering choice belongs to one step
    state.pinned = state.pinned && state.pinned.token === token && state.pinned.column === column ? null :
      { kind: "out", column, token };
    state.focus = state.pinned;
    state.focusAlternatives = state.pinned !== null && event.detail === 0;  // opened from the keyboard
  } else if (alt && !alt.classList.contains("lv-alt-chosen") && !state.busy) {
    redecode({ replacement: Number(alt.dataset.id) });
    return;
  } else if (target.closest(".lv-steer-go") && state.steer.size && !state.busy) {
    const srcTokens = tokensOf(sourceOf(viewValue()));
    const pieces = [...state.steer].flatMap((i) => srcTokens[i].pieces);
    if (state.steerMode === "only") {
      redecode({ steer: pieces });
    } else {  // the model's own weights at this step, scaled at the chosen pieces
      const hyp = hypothesisOf(viewValue(), state.column, state.hypothesis);
      const position = tokensOf(hyp)[state.pinned.token].pieces[0];
      const factor = state.steerMode === "boost" ? 3 : 0;
      redecode({ weights: hyp.attention[position].map((w, j) => (pieces.includes(j) ? w * factor : w)) });
    }
    return;
  } else if (target.closest(".lv-src") && state.pinned) {
    const index = Number(target.closest(".lv-src").dataset.token);
    if (state.steer.has(index)) state.steer.delete(index); else state.steer.add(index);
  } else if (close && close.classList.contains("lv-unpin")) {
    unpin();
  } else if (close) {
    state.edits.splice(Number(close.dataset.edit), 1);
  } else if (target.closest(".lv-col") && !target.closest("button")) {
    const column = Number(target.closest(".lv-col").dataset.column);
    if (column !== state.column) { state.column = column; state.hypothesis = 0; state.pinned = null; }
  } else {
    return;
  }
  state.message = "";
  render();
});

async function scoreTranslation(target) {
  const value = viewValue();
  const column = value.columns[state.column];
  const best = column.hypotheses[0];
  const request = server.score({ model: value.model, source: value.source, target, settings: column.settings });
  state.busy = true;
  state.message = "";
  render();
  try {
    const answer = JSON.parse(await request);
    if (answer.error) state.message = answer.error;
    else {
      state.edits.unshift({ sentence: answer.sentence, original: best, label: column.label, scored: true });
      state.edits = state.edits.slice(0, 4);
    }
  } catch (error) {
    state.message = `Scoring failed: ${error}`;
  } finally {
    state.busy = false;
    render();
  }
}

element.addEventListener("submit", (event) => {
  event.preventDefault();
  if (event.target.classList.contains("lv-score")) {
    const target = event.target.querySelector("input[name=target]").value;
    if (!target.trim()) { state.message = "Type a translation to score."; render(); }
    else if (!state.busy) scoreTranslation(target);
    return;
  }
  const word = event.target.querySelector("input[name=word]").value;
  if (!word.trim()) { state.message = "Type a word first."; render(); return; }
  if (!state.busy) redecode({ replacement: word });
});

element.addEventListener("input", (event) => {
  if (event.target.classList.contains("lv-step-range")) {
    state.pinned = { kind: "out", column: state.column, token: Number(event.target.value) };
    state.steer.clear();
    state.focus = state.pinned;
    render();
    element.querySelector(".lv-step-range").focus();
  }
});

element.addEventListener("change", (event) => {
  if (event.target.classList.contains("lv-pieces")) {
    state.pieces = event.target.checked;
    state.pinned = null;
    state.steer.clear();
    state.focus = null;
  } else if (event.target.classList.contains("lv-steer-mode")) {
    state.steerMode = event.target.value;
  } else if (event.target.classList.contains("lv-hide-eos")) {
    state.hideEos = event.target.checked;
  } else {
    return;
  }
  render();
});

// A shared link (assets/share_link.js) may name the n-best row to show first: `sel`.
let linkedSelection = Number(new URLSearchParams(window.location.search).get("sel") || 0);

watch("value", () => {
  const value = viewValue();
  const columns = value ? value.columns : [];
  const second = columns.length > 1 ? columns[1].hypotheses.length : 0;
  const shared = Number.isInteger(linkedSelection) && linkedSelection > 0 && linkedSelection < second;
  Object.assign(state, { column: columns.length > 1 ? 1 : 0, hypothesis: shared ? linkedSelection : value ? value.selected || 0 : 0,
                         focus: null, pinned: null, edits: [], busy: false, message: "", steer: new Set(),
                         saliency: new Map() });
  linkedSelection = 0;  // only the first result opened from the link
  render();
});
render();
