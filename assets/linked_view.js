// The explorer's linked view (s2s/ui/linked_view.py), part 8 of 8, joined last: render() puts the
// views together (words, heatmap, tree, answers: lv_*.js), and the page's events change the one
// selection state (lv_core.js) and redraw. `props.value` is the JSON text sent by the server
// (view_value), read through viewValue(); the server functions answer JSON text too. Hover,
// selection, the word / piece switch, alternatives and stepping are all local: only a re-decode,
// saliency or a score calls the server.

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
    `class="lv-hide-eos"${state.hideEos ? " checked" : ""}> hide &lt;/s&gt;</label>${headPicker(value)}</div>` +
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
    `${pinned === null ? "" : alternativesPanel(value, state.column, hyp, outTokens, pinned)}` +
    `${neighboursPanel(value, hyp)}</div>` +
    `<div class="lv-right"><div class="lv-matrices"><div class="lv-matrix" tabindex="0">` +
    `${heatmap(matrix, outTokens, srcTokens, focusRow, label)}</div>` +
    `${saliencyMatrix(outTokens, srcTokens, focusRow)}</div>` +
    `<div class="lv-right-head">${matrix ? `<span class="lv-caption">Attention ` +
      `<button type="button" class="lv-export" data-format="svg" title="download this heatmap as SVG">SVG</button>` +
      `<button type="button" class="lv-export" data-format="png" title="download this heatmap as PNG">PNG</button>` +
      `</span>` : ""}${saliencyBar(matrix)}</div>${headsPanel(value, hyp, outTokens, srcTokens)}</div></div>` +
    treeFor(value, outTokens, pinned);
  drawHeadGrid(root, value, hyp, outTokens, srcTokens);
  revealSelectedBranch(root);
  highlightFromSource(null);
  if (state.focusAlternatives) {
    state.focusAlternatives = false;
    const first = root.querySelector(".lv-alt");
    if (first) first.focus();
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

// Keyboard: one Tab stop per output strip, arrow keys between its words, Enter (a click) opens a
// word's alternatives with the focus in them, Escape closes them and returns to the word.
element.addEventListener("keydown", (event) => {
  const out = event.target.closest(".lv-out:not(.lv-edited)");
  if ((event.key === "Enter" || event.key === " ") && event.target.closest(".lv-head-canvas")) {
    const { layer, head } = event.target.dataset;
    pickHead(event.target);
    render();
    const again = element.querySelector(`.lv-head-canvas[data-layer="${layer}"][data-head="${head}"]`);
    if (again) again.focus();
    event.preventDefault();
  } else if (event.key === "Escape" && state.pinned) {
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

element.addEventListener("mousemove", (event) => {
  const canvas = event.target.closest(".lv-head-canvas");
  if (canvas) describeHeadCell(canvas, event);
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
  if (target.closest(".lv-heads-go")) {
    if (state.headsOff.size && !state.busy) switchHeadsOff();
    return;
  }
  if (target.closest(".lv-head-canvas")) {
    pickHead(target.closest(".lv-head-canvas"));
    render();
    return;
  }
  const zoom = target.closest(".lv-zoom-in, .lv-zoom-out, .lv-zoom-fit");
  if (zoom) {
    const wrap = element.querySelector(".lv-tree-wrap");
    const svg = element.querySelector(".lv-tree");
    const fit = wrap && svg ? wrap.clientWidth / Number(svg.viewBox.baseVal.width) : 1;
    state.treeZoom = zoom.classList.contains("lv-zoom-fit") ? Math.min(1, fit) :
      Math.min(3, Math.max(0.25, state.treeZoom * (zoom.classList.contains("lv-zoom-in") ? 1.25 : 0.8)));
    render();
    return;
  }
  if (target.closest(".lv-tree-expand, .lv-tree-fold")) {
    state.treeExpanded = Boolean(target.closest(".lv-tree-expand"));
    render();
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
    if (state.pinned) openNeighbours("output", token); else state.nb = null;
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
      redecode({ weights: shownAttention(hyp)[position].map((w, j) => (pieces.includes(j) ? w * factor : w)) });
    }
    return;
  } else if (target.closest(".lv-src") && state.pinned) {
    const index = Number(target.closest(".lv-src").dataset.token);
    if (state.steer.has(index)) state.steer.delete(index); else state.steer.add(index);
  } else if (target.closest(".lv-src")) {  // nothing pinned: where did it learn to read this word?
    openNeighbours("source", Number(target.closest(".lv-src").dataset.token));
  } else if (target.closest(".lv-nb-close")) {
    state.nb = null;
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
    openNeighbours("output", state.pinned.token);
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
  } else if (event.target.classList.contains("lv-head-pick")) {
    const [layer, head] = event.target.value.split(".").map(Number);
    state.head = { layer, head };
  } else if (event.target.classList.contains("lv-head-kind")) {
    state.headKind = event.target.value;
    state.selfHead = null;
  } else if (event.target.classList.contains("lv-head-off-box")) {
    if (event.target.checked) state.headsOff.add(event.target.dataset.name);
    else state.headsOff.delete(event.target.dataset.name);
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
                         saliency: new Map(), treeExpanded: false, headsOff: new Set(), selfHead: null, nb: null });
  if (value && value.heads && state.head.layer >= value.heads.decoder_layers) state.head = { layer: -1, head: -1 };
  applyLinkedHead(value);
  applyLinkedNeighbours(value);
  linkedSelection = 0;  // only the first result opened from the link
  render();
});

render();
