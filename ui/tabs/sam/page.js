// What the Prompt SAM tab's page scripts (live.js, keys.js) share about the page: the photo as drawn,
// and an element once Gradio has drawn it. Run after prompt.js (photoBox).

// The photo as the page shows it: its element, natural size and place on screen; null before it loads.
function photoShown() {
  const img = document.querySelector("#sam-canvas img");
  if (!img || !img.naturalWidth) return null;
  const natural = [img.naturalWidth, img.naturalHeight];
  return {img, natural, box: photoBox(img.getBoundingClientRect(), natural)};
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
