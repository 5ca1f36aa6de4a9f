// The linked view, part 5: the beam search as a prefix tree (in words or pieces), grown up to the
// word shown, with zoom, folding of dropped prefixes and SVG export.

// Inside the SVG, so that a downloaded tree looks the same outside the page.
const TREE_STYLE = "text{font:11px sans-serif;fill:currentColor}.lv-edge{fill:none;stroke:#8a8f98;stroke-width:1}" +
  ".lv-edge-path{stroke:#d9480f;stroke-width:2.5}.lv-edge-pruned{stroke-dasharray:3 2;opacity:.5}" +
  ".lv-node circle,.lv-node rect{fill:#4c546c}.lv-node-finished rect{fill:#2b8a3e}.lv-node-pruned{opacity:.45}" +
  ".lv-node-path circle,.lv-node-path rect{fill:#d9480f}.lv-node-path text{font-weight:700}";

function downloadTree() {
  const svg = element.querySelector(".lv-tree");
  if (!svg || !viewValue()) return;
  saveBlob(new Blob([svg.outerHTML], { type: "image/svg+xml" }), fileName(viewValue(), "beam-tree.svg"));
}

const TREE_ROW = 16, TREE_COLUMN = 74, TREE_LABEL = 11, TREE_COLLAPSE_BEAM = 8;

// The search's nodes as a tree of prefixes: id "step:slot" (kept), "step:fI" (finished), "step:pI"
// (pruned at the step shown); grown only up to step `upToStep` (a piece index; null: all).
function traceTree(trace, upToStep) {
  const nodes = new Map();
  const root = { id: "root", step: -1, piece: "<s>", score: 0, kind: "root", children: [], startsWord: true };
  nodes.set("root", root);
  const add = (node, parentId) => {
    const parent = nodes.get(parentId);
    if (!parent) return;
    Object.assign(node, { children: [], parent });
    parent.children.push(node);
    nodes.set(node.id, node);
  };
  trace.forEach((step) => {
    if (upToStep !== null && step.step > upToStep) return;
    const parentOf = (slot) => (step.step === 0 ? "root" : `${step.step - 1}:${slot}`);
    step.alive.forEach((c) => add({ id: `${step.step}:${c.slot}`, step: step.step, piece: c.piece, score: c.score,
                                    kind: "alive", startsWord: c.starts_word }, parentOf(c.parent)));
    step.finished.forEach((c, i) => add({ id: `${step.step}:f${i}`, step: step.step, piece: "</s>", score: c.score,
                                          normalized: c.normalized_score, kind: "finished", startsWord: true },
                                        parentOf(c.parent)));
    if (step.step === upToStep) {
      step.pruned.forEach((c, i) => add({ id: `${step.step}:p${i}`, step: step.step, piece: c.piece, score: c.score,
                                          kind: "pruned", startsWord: c.starts_word }, parentOf(c.parent)));
    }
  });
  return root;
}

// The tree as drawn (each node's `shown` children): in words, a chain of pieces that continue one
// word is drawn as its last node, labelled with the whole word; at a wide beam, the prefixes that
// lead to no hypothesis shown are left out until expanded. Returns bestEnd(node) (the best
// normalised score of a hypothesis the node leads to) and how many prefixes were left out.
function displayTree(root, words, collapse) {
  const bestEnd = (node) => {
    if (node.bestEnd === undefined) {
      node.bestEnd = node.kind === "finished" ? node.normalized : Math.max(-Infinity, ...node.children.map(bestEnd));
    }
    return node.bestEnd;
  };
  const continues = (node) => words && node.kind === "alive" && node.children.length === 1 &&
    !node.children[0].startsWord && node.children[0].kind !== "pruned";
  const visit = (node, word) => {
    node.label = node.kind === "root" ? "<s>" :
      (words && !node.startsWord ? word : "") + pieceLabel(node.piece).replace("␣", "");
    node.children.forEach((child) => visit(child, node.label));
    let shown = node.children.map((child) => { let end = child; while (continues(end)) end = end.children[0]; return end; });
    if (collapse) {
      const kept = shown.filter((c) => !(c.kind === "alive" && bestEnd(c) === -Infinity));
      left += shown.length - kept.length;
      shown = kept;
    }
    node.shown = shown;
  };
  let left = 0;
  visit(root, "");
  return { bestEnd, left };
}

function beamTree(column, hyp, upToStep) {
  const trace = column.trace;
  if (!trace) return "";
  const root = traceTree(trace, upToStep);
  const wide = column.settings.beam_size >= TREE_COLLAPSE_BEAM;
  const { bestEnd, left } = displayTree(root, !state.pieces, wide && !state.treeExpanded);
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
  // n-best is ranked), then by the prefix's log-prob. So the best hypothesis runs along the top row
  // and the n-best follow, the prefixes the search dropped below them. Leaves get consecutive rows,
  // a parent sits at its first child's row, columns are depths (words or pieces), no empty bands.
  const ranked = (a, b) => (bestEnd(b) === bestEnd(a) ? b.score - a.score : bestEnd(b) - bestEnd(a));
  let row = 0, depth = 0;
  const drawn = [];
  const place = (node, level) => {
    node.level = level;
    depth = Math.max(depth, level);
    drawn.push(node);
    node.shown = node.shown || [];
    node.shown.sort(ranked);
    node.shown.forEach((child) => { child.drawnParent = node; place(child, level + 1); });
    node.row = node.shown.length ? node.shown[0].row : row++;
  };
  place(root, 0);
  const zoom = state.treeZoom;
  const width = (depth + 1) * TREE_COLUMN + 100;
  const height = row * TREE_ROW + 20;
  const x = (n) => 20 + n.level * TREE_COLUMN;
  const y = (n) => 12 + n.row * TREE_ROW;
  let edges = "", marks = "";
  drawn.forEach((n) => {
    const onPath = path.has(n.id);
    const cls = `lv-node lv-node-${n.kind}${onPath ? " lv-node-path" : ""}`;
    if (n.drawnParent) {
      const px = x(n.drawnParent), py = y(n.drawnParent);
      edges += `<path class="lv-edge${onPath && path.has(n.drawnParent.id) ? " lv-edge-path" : ""}` +
        `${n.kind === "pruned" ? " lv-edge-pruned" : ""}" ` +
        `d="M${px},${py} H${px + TREE_COLUMN / 2} V${y(n)} H${x(n)}"/>`;
    }
    const short = n.label.length > TREE_LABEL ? `${n.label.slice(0, TREE_LABEL - 1)}…` : n.label;
    const tip = `${n.label} · log-prob ${n.score.toFixed(2)}` + (n.kind === "finished" ? ` · normalised ` +
      `${n.normalized.toFixed(3)}` : "") + (n.kind === "pruned" ? " · pruned here" : "");
    const mark = n.kind === "finished" ? `<rect x="${x(n) - 4}" y="${y(n) - 4}" width="8" height="8"/>` :
                 `<circle cx="${x(n)}" cy="${y(n)}" r="${n.kind === "root" ? 5 : 4}"/>`;
    marks += `<g class="${cls}" data-node="${n.id}"><title>${escapeHtml(tip)}</title>${mark}` +
             `<text x="${x(n) + 6}" y="${y(n) - 3}">${escapeHtml(short)}</text></g>`;
  });
  return `<div class="lv-tree-head"><div class="lv-caption">Beam search tree (${column.label}, in ${unit()}s): ` +
         `prefixes shared by hypotheses share nodes; the best hypothesis on top, then the branches to the others, ` +
         `then the dropped prefixes; ` +
         `squares end a hypothesis; the selected hypothesis in orange${upToStep !== null ?
           `; grown to ${positionLabel(hyp, upToStep)}, with the candidates pruned there faded` : ""}.</div>` +
         `${left ? `<button type="button" class="lv-tree-expand">show the ${left} prefixes the search dropped ` +
           `</button>` : wide && state.treeExpanded ? `<button type="button" class="lv-tree-fold">hide the dropped ` +
           `prefixes</button>` : ""}<span class="lv-zoom" role="group" aria-label="zoom the tree"><button type="button" class="lv-zoom-out" ` +
         `aria-label="zoom out">−</button><button type="button" class="lv-zoom-in" aria-label="zoom in">+</button>` +
         `<button type="button" class="lv-zoom-fit" aria-label="fit the tree to the width">fit</button></span>` +
         `<button type="button" class="lv-download">Download SVG</button></div><div class="lv-tree-wrap" tabindex="0" ` +
         `aria-label="the beam search tree; scroll it with the arrow keys">` +
         `<svg class="lv-tree" width="${Math.round(width * zoom)}" height="${Math.round(height * zoom)}" ` +
         `viewBox="0 0 ${width} ${height}" role="img" aria-label="beam search tree" ` +
         `xmlns="http://www.w3.org/2000/svg"><style>${TREE_STYLE}</style>${edges}${marks}</svg></div>`;
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

function treeFor(value, outTokens, pinned) {
  const beam = value.columns.findIndex((c) => c.trace);
  if (beam < 0) return "";
  const hyp = hypothesisOf(value, beam, beam === state.column ? state.hypothesis : 0);
  const step = pinned !== null && beam === state.column ? outTokens[pinned].pieces[0] : null;
  return beamTree(value.columns[beam], hyp, step);
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
