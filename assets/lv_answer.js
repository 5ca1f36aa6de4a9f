// The linked view, part 7 of 8: the answers to a click — a word's alternatives, steering the attention,
// edits re-decoded by the server, and a person's translation scored.

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
        `${hyp.attention ? `<div class="lv-matrix lv-edit-matrix" tabindex="0">${heatmap(tokenMatrix(hyp.attention, tokens, srcTokens),
          tokens, srcTokens, null, "attention while reading your translation")}</div>` : ""}</div>`;
    }
    const what = edit.headsOff ? `heads off: ${escapeHtml(edit.headsOff.split(",").map((name) => {
      const [kind, layer, head] = name.split(".");
      return `${kind} ${headLabel(Number(layer), Number(head))}`;
    }).join("; "))}` : edit.steered ? `${escapeHtml(edit.steered)} at ${positionLabel(hyp, edit.sentence.steered[0])}` +
      (edit.sentence.prefix ? ` after “${escapeHtml(edit.sentence.prefix)}”` : "") :
      `forced “${escapeHtml(edit.sentence.prefix)}”`;
    const steeredRow = edit.sentence.steered && edit.sentence.steered.length ?
      tokens.findIndex((t) => t.pieces.includes(edit.sentence.steered[0])) : null;
    const matrix = edit.steered ? heatmap(tokenMatrix(hyp.attention, tokens, srcTokens), tokens, srcTokens, steeredRow,
                                          `attention of edit ${n + 1}, the steered row marked`) : "";
    // Without heads the model itself changed: its score of its own output is set beside the whole model's.
    const verdict = edit.headsOff ? `${edit.sentence.hypotheses[0].text === edit.original.text ? "the same output" :
      "a different output"}, scored ${hyp.normalized_score.toFixed(3)} by the model without them against ` +
      `${edit.original.normalized_score.toFixed(3)} by the whole model` :
      `the rest decoded again. Score ${hyp.normalized_score.toFixed(3)} against the original's ` +
      `${edit.original.normalized_score.toFixed(3)} (${delta >= 0 ? "+" : ""}${delta.toFixed(3)}: the model ` +
      `${delta > 0 ? "prefers the edit" : "preferred its own output"})`;
    return `<div class="lv-edit"><div class="lv-edit-head">Edit ${n + 1} (${escapeHtml(edit.label)}): ${what}, ` +
           `${verdict}. <button type="button" class="lv-edit-close" data-edit="${n}" ` +
           `aria-label="remove this edit">×</button></div>` +
           `<div class="lv-strip">${outputStrip(-1, hyp, tokens, "lv-edited")}</div>` +
           `${matrix ? `<div class="lv-matrix lv-edit-matrix" tabindex="0">${matrix}</div>` : ""}</div>`;
  }).join("");
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
  // A Transformer's steering replaces the layer and head the heatmap shows (all of the layer's heads
  // for its average).
  const heads = hyp.head_attention ? { steer_layer: state.head.layer, steer_head: state.head.head } : {};
  const request = server.redecode({ model: value.model, source: value.source, ids: hyp.ids, position,
                                    settings: { ...column.settings, ...heads }, ...change });
  await addEdit(request, (answer) => ({ sentence: answer.sentence, original: hyp, label: column.label, steered }),
                "Re-decoding");
}

// Wait for a server function's answer (`request`, already sent) with the page showing it is busy;
// put the edit `toEdit(answer)` makes on top of the latest few, or say the server's error.
async function addEdit(request, toEdit, what) {
  state.busy = true;
  state.message = "";
  render();
  try {
    const answer = JSON.parse(await request);
    if (answer.error) {
      state.message = answer.error;
    } else {
      state.edits.unshift(toEdit(answer));
      if (answer.note) state.message = answer.note;
      state.edits = state.edits.slice(0, 4);  // the latest few edits stay on screen
    }
  } catch (error) {
    state.message = `${what} failed: ${error}`;
  } finally {
    state.busy = false;
    render();
  }
}

function unpin() {
  state.pinned = null;
  state.steer.clear();
  if (state.nb && state.nb.side === "output") state.nb = null;
}

async function scoreTranslation(target) {
  const value = viewValue();
  const column = value.columns[state.column];
  const best = column.hypotheses[0];
  const request = server.score({ model: value.model, source: value.source, target, settings: column.settings });
  await addEdit(request, (answer) => ({ sentence: answer.sentence, original: best, label: column.label, scored: true }),
                "Scoring");
}
