// The linked view, part 2: words — the source line, the output columns with their probabilities,
// the n-best list's verdict, a paragraph's whole translation, and hover highlighting.

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
