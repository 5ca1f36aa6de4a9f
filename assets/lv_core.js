// The linked view, part 1 of 8: the one selection state every view reads, the server's value,
// and what all views share (colours, words, positions). The parts are joined in this order when the
// page loads (s2s/ui/linked_view.py, VIEW_FILES); Gradio runs them as one body with `element`,
// `props`, `server` and `watch` in scope.

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
                focusAlternatives: false, treeZoom: 1, treeExpanded: false,
                // A Transformer's heads (lv_heads.js): the layer and head the heatmap shows (-1: the last
                // layer, the average of its heads), the grid's kind, heads ticked off, a self-attention head enlarged.
                head: { layer: -1, head: -1 }, headKind: "cross", headsOff: new Set(), selfHead: null,
                // The "seen in training" panel (lv_neighbours.js): {side, token, column, hypothesis} or null.
                nb: null };

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

// Beam search's back-pointers (hyp.parent_slots, see s2s.search.Hypothesis): token t extends
// the prefix that sat in slot parent_slots[t] after step t - 1, and itself sits in slot
// parent_slots[t + 1] of trace[t].alive (for every token but the final </s>).
function slotAtStep(hyp, t) {
  return hyp.parent_slots[t + 1];
}

// The beam search as a prefix tree (beamTree, below): a node per kept prefix (step, slot),
// branches ordered by the best hypothesis they lead to, finished hypotheses as squares at the step
// they ended, and — at the step shown by the slider — the candidates that were scored and pruned,
// faded. Grown only up to that step.

// Whether the finished candidate `end` (of the trace) is hypothesis `hyp`'s last step.
function endsAt(hyp, end) {
  return end.parent === hyp.parent_slots[hyp.parent_slots.length - 1] && Math.abs(end.score - hyp.score) < 1e-4;
}

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

// The selected hypothesis and its word- (or piece-) level attention, as every view shows it.
function currentView(value) {
  const srcTokens = tokensOf(sourceOf(value));
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const outTokens = tokensOf(hyp);
  return { srcTokens, hyp, outTokens, matrix: tokenMatrix(shownAttention(hyp), outTokens, srcTokens),
           label: `attention${shownHeadLabel(hyp)} of ${value.columns[state.column].label} hypothesis ` +
                  `${state.hypothesis + 1}: ${hyp.text}` };
}
