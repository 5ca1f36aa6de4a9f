// The linked view, part 6 of 8: "seen in training" — for the output word pinned, or a source word
// clicked, the training sentences whose hidden state there is nearest (server.neighbours, the
// model's neighbour index), the matching word marked in each and the word its attention aligns it
// with in the translation, and a 2-D map of the neighbourhood (the query and its neighbours on their
// first two principal components; hover a dot for its sentence). A shared link may open the panel:
// `nb` = SIDE.WORD ("out.3", "src.0").

const NEIGHBOURS = 10;
const neighbourAnswers = new Map();  // answers by question, the latest few (a session asks again as it moves)
let linkedNeighbours = new URLSearchParams(window.location.search).get("nb");

// The question of state.nb for the shown hypothesis: {key, side, position (piece), label} or null.
function neighbourQuestion(value, hyp) {
  const nb = state.nb;
  if (!nb || nb.column !== state.column || nb.hypothesis !== state.hypothesis) return null;
  const tokens = nb.side === "output" ? tokensOf(hyp) : tokensOf(sourceOf(value));
  const token = tokens[nb.token];
  if (!token || token.eos) return null;
  const position = token.pieces[0];
  return { key: JSON.stringify([value.model, value.source, hyp.ids, nb.side, position]), side: nb.side, position,
           label: token.label };
}

// Open the panel for word `token` of `side` ("output" or "source") and ask the server unless known.
function openNeighbours(side, token) {
  state.nb = { side, token, column: state.column, hypothesis: state.hypothesis };
  const value = viewValue();
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const question = neighbourQuestion(value, hyp);
  if (!question || neighbourAnswers.has(question.key)) return;
  neighbourAnswers.set(question.key, { pending: true });
  server.neighbours({ model: value.model, source: value.source, ids: hyp.ids, side, position: question.position,
                      k: NEIGHBOURS })
    .then((text) => JSON.parse(text))
    .catch((error) => ({ error: `Looking up the training sentences failed: ${error}` }))
    .then((answer) => {
      neighbourAnswers.set(question.key, answer);
      while (neighbourAnswers.size > 16) neighbourAnswers.delete(neighbourAnswers.keys().next().value);
      render();
    });
}

// A training sentence from its words, the word `marked` highlighted; no space before punctuation.
function markedWords(words, marked) {
  return words.map((word, i) => {
    if (word === "</s>") return "";
    const shown = i === marked ? `<mark>${escapeHtml(word)}</mark>` : escapeHtml(word);
    return (i > 0 && !/^[.,!?;:)»…]+$/.test(word) ? " " : "") + shown;
  }).join("");
}

function neighboursPanel(value, hyp) {
  const question = neighbourQuestion(value, hyp);
  if (!question) return "";
  const answer = neighbourAnswers.get(question.key) || { pending: true };
  const what = question.side === "output" ? "decoder state that chose" : "encoder state at";
  const head = `<div class="lv-alts-head"><button type="button" class="lv-edit-close lv-nb-close" aria-label="close ` +
    `the training sentences" title="close">×</button><strong>Seen in training</strong>: the training pairs where the ` +
    `${what} a word is nearest to the one ${question.side === "output" ? "that chose" : "at"} ` +
    `“${escapeHtml(question.label)}” here`;
  const panel = (inner) => `<div class="lv-neighbours" aria-label="seen in training" data-nb="` +
    `${question.side === "output" ? "out" : "src"}.${state.nb.token}">${inner}</div>`;
  if (answer.pending) return panel(`${head}.</div><p class="lv-note">Looking it up…</p>`);
  if (answer.error) return panel(`${head}.</div><p class="lv-note">${escapeHtml(answer.error)}</p>`);
  const found = answer.neighbours;
  const agree = found.neighbours.length && question.side === "output" ? ` ${found.same_word} of ` +
    `${found.neighbours.length} say “${escapeHtml(found.word)}” there.` : "";
  const rows = found.neighbours.map((n, i) => `<li data-neighbour="${i}"><span class="lv-nb-sim" title="cosine ` +
    `similarity of the two states">${n.similarity.toFixed(2)}</span> <span class="lv-nb-source">` +
    `${markedWords(n.source_words, n.source_word)}</span><br><span class="lv-nb-target${n.same_word ? " lv-nb-same" : ""}">` +
    `→ ${markedWords(n.target_words, n.target_word)}</span></li>`).join("");
  const index = found.index;
  const about = index && index.sentences ? `<p class="lv-note">From ${index.sentences.toLocaleString()} indexed training ` +
    `pairs; marked in the other language: the word the model's attention aligns with it.</p>` : "";
  return panel(`${head} (cosine similarity).${agree}</div><div class="lv-nb-body">${neighbourMap(found, question.label)}` +
    `<ol class="lv-nb-list">${rows}</ol></div>${about}`);
}

// The query (a ring) and its neighbours (numbered dots) on the first two principal components.
function neighbourMap(found, label) {
  const { x, y, explained } = found.map;
  if (x.length < 2) return "";
  const width = 200, height = 150, pad = 14;
  const span = (values) => [Math.min(...values), Math.max(...values)];
  const [x0, x1] = span(x), [y0, y1] = span(y);
  const px = (v) => pad + ((v - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const py = (v) => height - pad - ((v - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const dots = found.neighbours.map((n, i) => `<g class="lv-nb-dot" data-neighbour="${i}"><title>${i + 1}. ` +
    `${escapeHtml(n.source)} → ${escapeHtml(n.target)} (${n.similarity.toFixed(2)})</title><circle cx="` +
    `${px(x[i + 1]).toFixed(1)}" cy="${py(y[i + 1]).toFixed(1)}" r="7" fill="${n.same_word === false ? "#bcaf6f" : "#4c546c"}"/>` +
    `<text x="${px(x[i + 1]).toFixed(1)}" y="${(py(y[i + 1]) + 3).toFixed(1)}">${i + 1}</text></g>`).join("");
  return `<svg class="lv-nb-map" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-label="map of the neighbourhood"><title>The state here (ring) and its neighbours on their first two principal ` +
    `components (${Math.round(100 * (explained[0] + explained[1]))}% of the variance)</title>${dots}` +
    `<circle cx="${px(x[0]).toFixed(1)}" cy="${py(y[0]).toFixed(1)}" r="8" class="lv-nb-query"><title>here: ` +
    `“${escapeHtml(label)}”</title></circle></svg>`;
}

// A shared link's `nb`, once the result it was made for is shown.
function applyLinkedNeighbours(value) {
  if (!linkedNeighbours || !value) return;
  const [side, word] = linkedNeighbours.split(".");
  const token = Number(word);
  linkedNeighbours = null;
  if (!Number.isInteger(token) || token < 0 || !(side === "out" || side === "src")) return;
  const hyp = hypothesisOf(value, state.column, state.hypothesis);
  const tokens = side === "out" ? tokensOf(hyp) : tokensOf(sourceOf(value));
  if (token >= tokens.length) return;
  if (side === "out") state.pinned = state.focus = { kind: "out", column: state.column, token };
  openNeighbours(side === "out" ? "output" : "source", token);
}
