// The linked view, part 4: a Transformer's heads (value.heads, see s2s/ui/linked_view.py head_info).
// The heatmap shows one layer and head, or a layer's average (state.head); a grid draws every head
// of every layer small — cross-attention for the hypothesis shown, or the encoder's or decoder's
// self-attention for the column's best output — each with its importance from the model card.
// A click on a cross head shows it in the heatmap, on a self-attention head enlarges it under the
// grid; ticking heads off and re-decoding (server.switch_heads) puts the output without them under
// the original, as the other edits do. Nothing here runs for an RNN (value.heads is null).

const HEAD_KINDS = { cross: "decoder → source (cross)", encoder: "encoder self-attention",
                     decoder: "decoder self-attention" };
const GRID_CELL = 7;  // pixels per word of a small heatmap

// A shared link (assets/share_link.js) may name the head to show: `head=LAYER.HEAD` (HEAD "avg").
let linkedHead = new URLSearchParams(window.location.search).get("head");

// The cross-attention heads of `layer` switched off in the column shown (its heads_off setting):
// their weights reach nothing, so the average leaves them out, as the server's `attention` and
// coverage penalty do (s2s.heads.last_layer_average).
function crossHeadsOff(layer) {
  const value = viewValue();
  const column = value && value.columns[state.column];
  const off = (column && column.settings && column.settings.heads_off) || "";
  return new Set(off.split(",").map((name) => name.trim().split(".")).filter(([kind, l]) => kind === "cross" &&
    Number(l) === layer).map(([, , head]) => Number(head)));
}

function averageHeads(heads, off = new Set()) {
  const on = heads.filter((_, h) => !off.has(h));
  const used = on.length ? on : heads;  // every head off: nothing reaches the output; all are shown
  return used[0].map((row, t) => row.map((_, s) => used.reduce((sum, h) => sum + h[t][s], 0) / used.length));
}

function shownLayer(hyp) {
  return state.head.layer < 0 ? hyp.head_attention.length - 1 : Math.min(state.head.layer, hyp.head_attention.length - 1);
}

// The piece-level [T][S] matrix the heatmap shows for `hyp`: the RNN's one attention, or the
// chosen layer's head (or the average of its heads) for a Transformer.
function shownAttention(hyp) {
  if (!hyp.head_attention) return hyp.attention;
  const layer = hyp.head_attention[shownLayer(hyp)];
  return state.head.head < 0 ? averageHeads(layer, crossHeadsOff(shownLayer(hyp))) : layer[state.head.head];
}

function headLabel(layer, head) {
  return `layer ${layer + 1}, ${head < 0 ? "average of heads" : `head ${head + 1}`}`;
}

// What the heatmap's caption says it shows (an average says which heads it leaves out).
function shownHeadLabel(hyp) {
  if (!hyp.head_attention) return "";
  const layer = shownLayer(hyp);
  const off = state.head.head < 0 ? [...crossHeadsOff(layer)].sort((a, b) => a - b) : [];
  const without = off.length && off.length < hyp.head_attention[layer].length ?
    ` without head${off.length > 1 ? "s" : ""} ${off.map((h) => h + 1).join(", ")}, switched off` : "";
  return ` (${headLabel(layer, state.head.head)}${without})`;
}

function headPicker(value) {
  if (!value.heads) return "";
  const layers = value.heads.decoder_layers;
  const options = [];
  for (let layer = 0; layer < layers; layer += 1) {
    for (let head = -1; head < value.heads.heads; head += 1) {
      const chosen = (state.head.layer < 0 ? layers - 1 : state.head.layer) === layer && state.head.head === head;
      options.push(`<option value="${layer}.${head}"${chosen ? " selected" : ""}>${headLabel(layer, head)}</option>`);
    }
  }
  return `<label class="lv-head-label">Heatmap shows <select class="lv-head-pick" aria-label="layer and head ` +
         `shown in the heatmap">${options.join("")}</select></label>`;
}

// The decoder's inputs as tokens: <s>, then the output's pieces but the last (input j is piece j - 1).
function decoderInputTokens(outTokens, length) {
  const shifted = outTokens.map((t) => ({ ...t, pieces: t.pieces.map((p) => p + 1).filter((p) => p < length) }))
    .filter((t) => t.pieces.length);
  return [{ label: "<s>", pieces: [0], eos: false }, ...shifted];
}

// Rows, columns and per-head piece matrices [layers][heads][rows][cols] of the grid's kind.
function gridData(value, hyp, outTokens, srcTokens) {
  const column = value.columns[state.column];
  if (state.headKind === "encoder" && column.encoder_attention) {
    return { matrices: column.encoder_attention, rows: srcTokens, cols: srcTokens, what: "source word reads source word" };
  }
  if (state.headKind === "decoder" && column.decoder_attention) {
    const best = tokensOf(column.hypotheses[0]);
    return { matrices: column.decoder_attention, rows: best, cols: decoderInputTokens(best, column.hypotheses[0].ids.length),
             what: "output word (of the best output) reads the words before it" };
  }
  return { matrices: hyp.head_attention, rows: outTokens, cols: srcTokens, what: "output word reads source word" };
}

function headImportance(value, kind, layer, head) {
  const loss = value.heads.importance[`${kind}.${layer}.${head}`];
  return loss === undefined ? "" : `${loss > 0 ? "−" : "+"}${Math.abs(loss).toFixed(1)} BLEU without it`;
}

function headsPanel(value, hyp, outTokens, srcTokens) {
  if (!value.heads || !hyp.head_attention) return "";
  const { matrices, rows, cols, what } = gridData(value, hyp, outTokens, srcTokens);
  const kinds = Object.entries(HEAD_KINDS).map(([kind, label]) => `<label><input type="radio" name="lv-head-kind" ` +
    `class="lv-head-kind" value="${kind}"${state.headKind === kind ? " checked" : ""}> ${label}</label>`).join(" ");
  const grid = matrices.map((layer, l) => `<div class="lv-head-row"><span class="lv-caption">layer ${l + 1}</span>` +
    layer.map((_, h) => {
      const name = `${state.headKind}.${l}.${h}`;
      const shown = state.headKind === "cross" ? shownLayer(hyp) === l && state.head.head === h :
        state.selfHead === `${l}.${h}`;
      return `<figure class="lv-head${shown ? " lv-head-shown" : ""}${state.headsOff.has(name) ? " lv-head-off" : ""}">` +
        `<canvas class="lv-head-canvas" data-layer="${l}" data-head="${h}" width="${cols.length * GRID_CELL}" ` +
        `height="${rows.length * GRID_CELL}" tabindex="0" role="button" aria-label="${escapeHtml(HEAD_KINDS[state.headKind])} ` +
        `${headLabel(l, h)}: show it larger"></canvas><figcaption>H${h + 1} ` +
        `<small>${headImportance(value, state.headKind, l, h)}</small><label title="switch this head off and re-decode">` +
        `<input type="checkbox" class="lv-head-off-box" data-name="${name}"${state.headsOff.has(name) ? " checked" : ""}> ` +
        `off</label></figcaption></figure>`;
    }).join("") + `</div>`).join("");
  const enlarged = state.headKind !== "cross" && state.selfHead ? (() => {
    const [l, h] = state.selfHead.split(".").map(Number);
    if (!matrices[l] || !matrices[l][h]) return "";
    return `<div class="lv-matrix" tabindex="0"><div class="lv-caption">${escapeHtml(HEAD_KINDS[state.headKind])}, ` +
      `${headLabel(l, h)}</div>${heatmap(tokenMatrix(matrices[l][h], rows, cols), rows, cols, null,
        `${HEAD_KINDS[state.headKind]} ${headLabel(l, h)}`)}</div>`;
  })() : "";
  const off = state.headsOff.size;
  const importance = Object.keys(value.heads.importance).length ? ` Each head says the dev BLEU lost without it ` +
    `(measured on ${escapeHtml(value.heads.split || "dev")}, greedy).` : "";
  const layers = (count, side) => `${count} ${side} layer${count === 1 ? "" : "s"}`;
  return `<details class="lv-heads" open><summary>Every head (${layers(value.heads.encoder_layers, "encoder")}, ` +
    `${layers(value.heads.decoder_layers, "decoder")}, ${value.heads.heads} heads each)</summary><div class="lv-head-kinds">${kinds}</div>` +
    `<p class="lv-note">Rows: ${what}.${importance} Click a head to see it larger; tick heads off and re-decode to ` +
    `see what the translation does without them.</p><div class="lv-head-grid">${grid}</div>` +
    `<p class="lv-note lv-head-hover" aria-live="polite"></p>${enlarged}` +
    `<button type="button" class="lv-heads-go"${off && !state.busy ? "" : " disabled"}>Re-decode with ${off} head` +
    `${off === 1 ? "" : "s"} off</button></details>`;
}

// Paint the grid's small heatmaps (canvas: a few thousand cells cost no DOM nodes).
function drawHeadGrid(root, value, hyp, outTokens, srcTokens) {
  const canvases = root.querySelectorAll(".lv-head-canvas");
  if (!canvases.length) return;
  const { matrices, rows, cols } = gridData(value, hyp, outTokens, srcTokens);
  canvases.forEach((canvas) => {
    const matrix = tokenMatrix(matrices[Number(canvas.dataset.layer)][Number(canvas.dataset.head)], rows, cols);
    const context = canvas.getContext("2d");
    matrix.forEach((row, r) => row.forEach((weight, c) => {
      context.fillStyle = cividis(weight);
      context.fillRect(c * GRID_CELL, r * GRID_CELL, GRID_CELL, GRID_CELL);
    }));
  });
}

// Hovering a small heatmap says which two words and the weight.
function describeHeadCell(canvas, event) {
  const value = viewValue();
  const { hyp, outTokens, srcTokens } = currentView(value);
  const { matrices, rows, cols } = gridData(value, hyp, outTokens, srcTokens);
  const box = canvas.getBoundingClientRect();
  const c = Math.floor(((event.clientX - box.left) / box.width) * cols.length);
  const r = Math.floor(((event.clientY - box.top) / box.height) * rows.length);
  const line = element.querySelector(".lv-head-hover");
  if (!line || !rows[r] || !cols[c]) return;
  const l = Number(canvas.dataset.layer), h = Number(canvas.dataset.head);
  const weight = tokenMatrix(matrices[l][h], rows, cols)[r][c];
  line.textContent = `${HEAD_KINDS[state.headKind]}, ${headLabel(l, h)}: “${rows[r].label}” → “${cols[c].label}” ${weight.toFixed(3)}`;
}

function pickHead(canvas) {
  const layer = Number(canvas.dataset.layer), head = Number(canvas.dataset.head);
  if (state.headKind === "cross") state.head = { layer, head };
  else state.selfHead = state.selfHead === `${layer}.${head}` ? null : `${layer}.${head}`;
}

// Re-decode the column's sentence with the ticked heads off; the answer joins the edits.
async function switchHeadsOff() {
  const value = viewValue();
  const column = value.columns[state.column];
  const headsOff = [...state.headsOff].sort().join(",");
  const request = server.switch_heads({ model: value.model, source: value.source, settings: column.settings,
                                        heads_off: headsOff });
  await addEdit(request, (answer) => ({ sentence: answer.sentence, original: column.hypotheses[0],
                                       label: column.label, headsOff }), "Re-decoding");
}

// The head a shared link names, once the first result with heads arrives.
function applyLinkedHead(value) {
  if (!linkedHead || !value || !value.heads) return;
  const [layer, head] = linkedHead.split(".");
  const l = Number(layer), h = head === "avg" ? -1 : Number(head);
  if (Number.isInteger(l) && l >= 0 && l < value.heads.decoder_layers && Number.isInteger(h) && h >= -1 &&
      h < value.heads.heads) state.head = { layer: l, head: h };
  linkedHead = null;  // only the first result opened from the link
}
