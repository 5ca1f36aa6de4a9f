// "Copy link" (s2s/ui/share.py): put the page's values in the address and copy it. Receives the
// values of __NAMES__ in that order; settings equal to their default are left out of the link,
// and the n-best row selected in the linked view goes in as `sel`, a Transformer's layer and head
// shown in its heatmap as `head` (LAYER.HEAD, HEAD "avg" for the average of the layer's heads), an open
// "seen in training" panel as `nb` (out.WORD or src.WORD).
(...values) => {
  const names = __NAMES__;
  const defaults = __DEFAULTS__;
  const query = new URLSearchParams();
  names.forEach((name, i) => {
    let value = values[i];
    if (value === null || value === undefined || value === "") return;
    if (name in defaults && String(value) === String(defaults[name])) return;
    query.set(name, String(value));
  });
  const selected = document.querySelector("#linked-view .lv-nbest-row.lv-selected");
  if (selected && selected.dataset.hypothesis !== "0") query.set("sel", selected.dataset.hypothesis);
  // A Transformer's heatmap: the layer and head shown, unless the default (last layer's average).
  const pick = document.querySelector("#linked-view .lv-head-pick");
  if (pick) {
    const lastLayer = pick.options[pick.options.length - 1].value.split(".")[0];
    const [layer, head] = pick.value.split(".");
    if (pick.value !== `${lastLayer}.-1`) query.set("head", `${layer}.${head === "-1" ? "avg" : head}`);
  }
  // The "seen in training" panel, when open: its side and word.
  const neighbours = document.querySelector("#linked-view .lv-neighbours");
  if (neighbours) query.set("nb", neighbours.dataset.nb);
  const link = `${window.location.origin}${window.location.pathname}?${query.toString()}`;
  window.history.replaceState(null, "", link);
  // Say what happened, on the button itself: copied, or (no clipboard on a plain-http address) where
  // the link is.
  const button = document.querySelector("#share-button");
  const said = (text) => {
    if (!button) return;
    const before = button.dataset.label || button.textContent;
    button.dataset.label = before;
    button.textContent = text;
    setTimeout(() => { button.textContent = before; }, 2500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(link).then(() => said("Link copied ✓"), () => said("Link in the address bar ✓"));
  } else {
    said("Link in the address bar ✓");
  }
}
