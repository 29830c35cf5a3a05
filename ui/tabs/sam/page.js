// What the Prompt SAM tab's page scripts (live.js, keys.js) share about the page: the photo as drawn,
// an element laid over it, and an element once Gradio has drawn it. Run after prompt.js (photoBox).

// The photo as the page shows it: its element, natural size and place on screen; null before it loads.
function photoShown() {
  const img = document.querySelector("#sam-canvas img");
  if (!img || !img.naturalWidth) return null;
  const natural = [img.naturalWidth, img.naturalHeight];
  return {img, natural, box: photoBox(img.getBoundingClientRect(), natural)};
}

// The element `id` laid over the photo: a `tag` styled by `css`, hidden from screen readers, inside the
// image's parent (made positioned); made again when Gradio draws the image anew.
function overPhoto(view, id, tag, css) {
  let layer = document.getElementById(id);
  const parent = view.img.parentElement;
  if (!layer || layer.parentElement !== parent) {
    layer?.remove();
    layer = document.createElement(tag);
    layer.id = id;
    layer.setAttribute("aria-hidden", "true");
    layer.style.cssText = css;
    if (getComputedStyle(parent).position === "static") parent.style.position = "relative";
    parent.appendChild(layer);
  }
  return layer;
}

// `then(element)` once the element `id` exists (Gradio may draw it after the script's component).
function whenThere(id, then) {
  const found = document.getElementById(id);
  if (found) { then(found); return; }
  const watcher = new MutationObserver(() => {
    const element = document.getElementById(id);
    if (element) { watcher.disconnect(); then(element); }
  });
  watcher.observe(document.body, {childList: true, subtree: true});
}
