// The Prompt SAM tab's decoder in the browser: run by gr.HTML as `js_on_load`, with `element` (this
// component), `props` (its value, set by the server) and `watch` in scope, after prompt.js (promptOf,
// pixelAt, halfToFloat, bestMask) and page.js (photoShown, overPhoto, whenThere).
//
// The server sends one image embedding per photo (float16) and SAM's exported decoder; this page runs
// the decoder with onnxruntime-web, so moving the mouse previews the mask under the cursor (int8
// decoder) and a click shows its mask at once (float32 decoder). The click still reaches the server
// through the image's own select event: the server decodes the committed prompts itself, and its
// picture replaces ours when it arrives. Nothing here is needed for the tab to work: if the runtime
// cannot load, one line says so and every click goes through the server.
//
// The value (see ui/tabs/sam/browser.py): {photo, size: [h, w], input: [h, w], embedding: url | null,
// clicks: [[x, y, mode], ...] of the selected object, decoder: {float32, int8}, runtime: {script,
// integrity, base, version}, rules, shapes, busy, sam: the title of the SAM decoded here, answering: the
// selector of the picker of the SAM that answers the clicks}. Coordinates are original-image pixels, x then y.
//
// The state is this one object, kept on the component's element (`element.samLive`) for the
// benchmark and the browser tests to read; nothing is put on `window`.

const live = {
  value: null,        // the server's latest value
  starting: null,     // the promise of the runtime and both sessions loading (once)
  ready: false,       // runtime and both sessions loaded
  int8: null,         // the int8 decoder's session: hover previews
  float32: null,      // the float32 decoder's session: a click's mask, as the server's
  threads: 0,         // the wasm threads the runtime was given
  photo: null,        // the photo whose embedding is loaded
  loading: null,      // the photo whose embedding is being fetched
  embedding: null,    // ort.Tensor float32 shaped as the value's shapes.embedding
  embeddingBytes: 0,  // what the embedding's download weighed
  embeddingMs: 0,     // and took
  warm: false,        // each session has run once (its first run is several times slower)
  clicks: [],         // the server's clicks of the selected object, then ours not yet confirmed
  warmup: null,       // a waiting warm-up: {value, done}
  click: null,        // a waiting click decode: {kind, prompt, at}
  hover: null,        // the latest mouse position waiting for a preview: {kind, point, mode, at}
  preview: null,      // the latest decoded preview: {key, mask}
  pointer: null,      // where the mouse last was over the page ({clientX, clientY}), to resume previews
  running: false,     // a decode is running (one at a time)
  shown: null,        // what the overlay shows: {kind: "preview" | "click"}
  timings: [],        // {kind, decoder, decode_ms, total_ms (null: not shown)}: the benchmark and tests read it
  serverShown: 0,     // when the latest server picture on screen arrived (performance.now())
  masks: {},          // the last decoded mask of each kind, {width, height, data: Uint8Array}, buffers reused
  pixels: null,       // the overlay's ImageData, reused while the mask's size stays
  status: "",         // the line shown under the photo
  beforeBusy: "",     // the line a dropped click's notice replaced, back once a click counts
  beforeOther: "",    // the line the notice of another SAM answering replaced
  dropped: 0,         // clicks Gradio dropped because the last one's event was still open
};
element.samLive = live;
element.dataset.samLive = "";
const BUSY = "Still answering the previous click: click again once its mask is shown.";
const OTHER = "No previews here: this page decodes only the default SAM, and another answers the clicks.";
const COLOURS = {click: [255, 176, 0, 150], preview: [0, 114, 178, 120]};  // Okabe-Ito orange, blue

const setStatus = (text) => {
  live.status = text;
  const line = element.querySelector(".sam-live-status");
  if (line) line.textContent = text;
};

function loadScript(src, integrity) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    if (integrity) {  // the CDN's copy must be the very file we pinned
      script.integrity = integrity;
      script.crossOrigin = "anonymous";
    }
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}

// The server's URLs are relative to the page (so they work behind a Space's proxy); the runtime
// imports its wasm glue by URL, which must then be absolute.
const absolute = (url) => new URL(url, document.baseURI).href;

async function start(value) {
  const runtime = value.runtime;
  if (!window.ort) await loadScript(absolute(runtime.script), runtime.integrity);
  ort.env.wasm.wasmPaths = absolute(runtime.base);
  // several wasm threads need a cross-origin isolated page (SharedArrayBuffer); a Gradio page is not
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const options = {executionProviders: ["wasm"], graphOptimizationLevel: "all"};
  live.int8 = await ort.InferenceSession.create(absolute(value.decoder.int8), options);
  live.float32 = await ort.InferenceSession.create(absolute(value.decoder.float32), options);
  live.threads = ort.env.wasm.numThreads;
  live.ready = true;
}

async function loadEmbedding(value) {
  const started = performance.now();
  const response = await fetch(absolute(value.embedding));
  if (!response.ok) throw new Error(`the embedding answered ${response.status}`);
  const bytes = await response.arrayBuffer();
  live.embedding = new ort.Tensor("float32", halfToFloat(new Uint16Array(bytes)), value.shapes.embedding);
  live.photo = value.photo;
  live.embeddingBytes = bytes.byteLength;
  live.embeddingMs = performance.now() - started;
}

// The graph's inputs (seg/sam/onnx_decoder.py prompt_arrays): coordinates in the encoder's input
// frame, box corners and the padding point (when there is no box) labelled as the server's rules say.
function feeds(prompt, value) {
  const rules = value.rules, side = value.shapes.low_res;
  const [h, w] = value.size, [ih, iw] = value.input, sx = iw / w, sy = ih / h;
  const coords = [], labels = [];
  for (const [x, y, label] of prompt.points) { coords.push(x * sx, y * sy); labels.push(label); }
  if (prompt.box) {
    const [x0, y0, x1, y1] = prompt.box;
    coords.push(x0 * sx, y0 * sy, x1 * sx, y1 * sy);
    labels.push(...rules.box_labels);
  } else {
    coords.push(0, 0);
    labels.push(rules.padding_label);
  }
  const n = labels.length;
  return {
    image_embeddings: live.embedding,
    point_coords: new ort.Tensor("float32", Float32Array.from(coords), [1, n, 2]),
    point_labels: new ort.Tensor("float32", Float32Array.from(labels), [1, n]),
    mask_input: new ort.Tensor("float32", new Float32Array(side * side), [1, 1, side, side]),
    has_mask_input: new ort.Tensor("float32", Float32Array.from([0]), [1]),
    orig_im_size: new ort.Tensor("float32", Float32Array.from([h, w]), [2]),
  };
}

// The best of SAM's masks for `prompt`, in the buffer kept for `kind` (reused while its size stays).
async function decode(session, prompt, value, kind) {
  const out = await session.run(feeds(prompt, value));
  const [, , height, width] = out.masks.dims;
  const kept = live.masks[kind];
  const into = kept && kept.data.length === height * width ? kept.data : new Uint8Array(height * width);
  return bestMask(out.iou_predictions.data, out.masks.data, height, width, into);
}

function overlay(view) {
  const canvas = overPhoto(view, "sam-live-overlay", "canvas", "position:absolute; pointer-events:none; z-index:5");
  const parentRect = canvas.parentElement.getBoundingClientRect();
  canvas.style.left = `${view.box.left - parentRect.left}px`;
  canvas.style.top = `${view.box.top - parentRect.top}px`;
  canvas.style.width = `${view.box.width}px`;
  canvas.style.height = `${view.box.height}px`;
  return canvas;
}

function paint(mask, kind) {
  const view = photoShown();
  if (!view) return;
  const canvas = overlay(view);
  if (canvas.width !== mask.width || canvas.height !== mask.height) {
    canvas.width = mask.width;
    canvas.height = mask.height;
  }
  const ctx = canvas.getContext("2d");
  if (!live.pixels || live.pixels.width !== mask.width || live.pixels.height !== mask.height) {
    live.pixels = ctx.createImageData(mask.width, mask.height);
  }
  const [r, g, b, a] = COLOURS[kind], rgba = live.pixels.data;
  for (let i = 0, j = 0; i < mask.data.length; i++, j += 4) {
    const on = mask.data[i];
    rgba[j] = on ? r : 0;
    rgba[j + 1] = on ? g : 0;
    rgba[j + 2] = on ? b : 0;
    rgba[j + 3] = on ? a : 0;
  }
  ctx.putImageData(live.pixels, 0, 0);
}

function clearOverlay() {
  const canvas = document.getElementById("sam-live-overlay");
  if (canvas) canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  live.shown = null;
}

function nextMode() {
  const checked = document.querySelector("#sam-mode input:checked");
  return checked ? checked.value : "positive";
}

function pointAt(event) {
  const view = photoShown();
  if (!view || event.target !== view.img) return null;
  return pixelAt(view.box, view.natural, event.clientX, event.clientY);
}

function usable() {
  return live.ready && live.embedding && live.value && live.photo === live.value.photo && answeredHere();
}

// The SAM chosen to answer the clicks is the one this page decodes (else its previews would show
// another model's masks). The line under the photo says so while another answers.
function answeredHere() {
  const picker = live.value?.answering && document.querySelector(live.value.answering);
  const here = !picker || picker.value === live.value.sam;
  if (!here && live.status !== OTHER) {
    live.beforeOther = live.status;
    setStatus(OTHER);
    clearOverlay();
  } else if (here && live.status === OTHER) {
    setStatus(live.beforeOther);
  }
  return here;
}

function record(entry) {
  live.timings.push(entry);
  if (live.timings.length > 500) live.timings.shift();
}

// A run that threw: the page stops decoding and says so; the server still answers every click.
function failed(error) {
  console.error("sam-live:", error);
  setStatus(`The browser decoder failed (${error.message}): clicks go through the server.`);
  live.ready = false;
}

// A session's first run is several times slower than later ones: both are run once when a photo's
// embedding arrives, before any hover, as the first job of `pump`.
async function runWarmUp(job) {
  const [h, w] = job.value.size, prompt = {points: [[w / 2, h / 2, job.value.rules.labels.positive]], box: null};
  for (const session of [live.int8, live.float32]) await session.run(feeds(prompt, job.value));
  live.warm = true;
}

async function runDecode(job) {
  const prompt = job.kind === "preview" ? promptOf(live.clicks, job.point, job.mode, live.value.rules) : job.prompt;
  if (!prompt) return;
  const started = performance.now();
  const mask = await decode(job.kind === "click" ? live.float32 : live.int8, prompt, live.value, job.kind);
  const decoded = performance.now();
  if (job.kind === "preview") live.preview = {key: JSON.stringify(prompt), mask};
  // a preview is stale once a click is pending or shown; a click's mask, once the server's picture
  // for a later moment is on screen (painting it then would hide that picture and stop previews)
  const stale = job.kind === "preview" ? live.click || live.shown?.kind === "click" : live.serverShown > job.at;
  live.masks[job.kind] = mask;
  if (!stale) {
    paint(mask, job.kind);
    live.shown = {kind: job.kind};
    await new Promise(requestAnimationFrame);  // on screen at the next frame
  }
  if (!stale || job.kind === "click") {
    record({kind: job.kind, decoder: job.kind === "click" ? "float32" : "int8", decode_ms: decoded - started,
            total_ms: stale ? null : performance.now() - job.at, points: prompt.points.length, box: !!prompt.box});
  }
}

// One run at a time: the warm-up first, then a click, then the newest hover. A hover that arrives while
// one runs replaces the waiting one, so a fast mouse never builds a backlog of stale previews.
async function pump() {
  if (live.running || !usable()) return;
  const job = live.warmup || live.click || live.hover;
  if (!job) return;
  if (job === live.warmup) live.warmup = null; else if (job === live.click) live.click = null; else live.hover = null;
  live.running = true;
  try {
    if (job.kind === "warm-up") await runWarmUp(job); else await runDecode(job);
  } catch (error) {
    failed(error);
  } finally {
    live.running = false;
    if (job.kind === "warm-up") job.done();
    if (live.warmup || live.click || live.hover) pump();
  }
}

function onMove(event) {
  live.pointer = {clientX: event.clientX, clientY: event.clientY};
  if (!usable() || live.shown?.kind === "click") return;
  const point = pointAt(event), mode = nextMode();
  if (!point) return;
  const key = JSON.stringify(promptOf(live.clicks, point, mode, live.value.rules));
  if (live.preview?.key === key && live.shown?.kind === "preview") return;  // already on screen
  live.hover = {kind: "preview", point, mode, at: performance.now()};
  pump();
}

// A click shows at once the preview already decoded for this very prompt (the mouse was there), then
// the float32 decoder's mask, which is the one that matches the server's.
async function onClick(event) {
  const point = live.value ? pointAt(event) : null;
  if (!point) return;
  const at = performance.now();
  // Gradio drops this click: say so, show no mask for it (also before this browser can decode)
  if (document.querySelector(live.value.busy)) {
    if (live.status !== BUSY) live.beforeBusy = live.status;
    setStatus(BUSY);
    live.dropped += 1;
    return;
  }
  if (live.status === BUSY) setStatus(live.beforeBusy);  // this click counts
  if (!usable()) return;
  if (live.clicks.length >= live.value.rules.clicks_per_object) return;  // the server refuses it and says why
  live.clicks = live.clicks.concat([[point[0], point[1], nextMode()]]);
  const prompt = promptOf(live.clicks, null, null, live.value.rules);
  live.hover = null;
  if (!prompt) {  // the first corner of a box: nothing to decode yet
    clearOverlay();
    return;
  }
  live.click = {kind: "click", prompt, at};
  if (live.preview && live.preview.key === JSON.stringify(prompt)) {
    paint(live.preview.mask, "click");
    live.shown = {kind: "click"};
    await new Promise(requestAnimationFrame);
    record({kind: "click", decoder: "int8 preview", decode_ms: 0, total_ms: performance.now() - at,
            points: prompt.points.length, box: !!prompt.box});
  }
  pump();
}

function onLeave() {
  if (live.shown?.kind === "preview") clearOverlay();
}

// Once the server's picture replaces a click's mask, a mouse resting on the photo previews again
// without having to move: a move made while the click's mask was on screen was not previewed.
function resumePreview() {
  const at = live.pointer;
  if (!at) return;
  onMove({target: document.elementFromPoint(at.clientX, at.clientY), clientX: at.clientX, clientY: at.clientY});
}

async function update(value) {
  live.value = value;
  if (!value) { clearOverlay(); return; }
  live.clicks = value.clicks || [];
  // the server's picture of these clicks replaces our click mask once it has loaded
  const view = photoShown(), arrived = performance.now();
  const shown = () => {
    live.serverShown = Math.max(live.serverShown, arrived);
    if (live.shown?.kind === "click") clearOverlay();
    resumePreview();
  };
  if (live.shown?.kind === "preview") clearOverlay();
  if (view) {
    if (view.img.complete) shown(); else view.img.addEventListener("load", shown, {once: true});
  }
  if (!value.runtime) return;
  if (!live.starting) {  // once: the decoder files exist from the moment SAM is loaded
    setStatus("Loading the browser decoder…");
    live.starting = start(value).then(
      () => setStatus(canHover() ? "Browser decoder ready: hover over the photo to preview."
                                 : "Browser decoder ready: tap the photo to see its mask at once."),
      (error) => {
        console.error("sam-live:", error);
        setStatus(`The browser decoder could not load (${error.message}): clicks go through the server.`);
      });
  }
  await live.starting;
  if (!live.ready || !value.embedding || live.photo === value.photo || live.loading === value.photo) return;
  live.loading = value.photo;
  try {
    await loadEmbedding(value);
    if (!live.warm) await new Promise((done) => { live.warmup = {kind: "warm-up", value, done}; pump(); });
    if (!live.ready) return;  // the warm-up said why
    const ready = (canHover() ? "Hover to preview; a click shows its mask at once. "
                              : "A tap shows its mask at once. ") + `Masks are decoded in this browser ` +
                  `(onnxruntime-web ${value.runtime.version}, ${live.threads} wasm thread(s)); ` +
                  `the server confirms every click.`;
    setStatus(ready);
  } catch (error) {
    setStatus(`The photo's embedding did not reach this browser (${error.message}): clicks go through the server.`);
  } finally {
    live.loading = null;
  }
}

// A phone or tablet has no hover: its status speaks of taps, not of previews it cannot show.
function canHover() {
  return window.matchMedia("(hover: hover) and (pointer: fine)").matches;
}

// The listeners go on the photo's component (its image is inside it), once: a second run of this
// script (the component drawn again) removes the first run's before adding its own.
function listen(area) {
  area.samLiveListeners?.abort();
  const listeners = new AbortController(), options = {capture: true, signal: listeners.signal};
  area.samLiveListeners = listeners;
  area.addEventListener("mousemove", onMove, options);
  area.addEventListener("click", onClick, options);
  area.addEventListener("mouseleave", onLeave, options);
}

whenThere("sam-canvas", listen);
watch("value", () => update(props.value));
update(props.value);
