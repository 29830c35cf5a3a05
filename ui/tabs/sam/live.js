// The Prompt SAM tab's decoder in the browser: run by gr.HTML as `js_on_load`, with `element` (this
// component), `props` (its value, set by the server) and `watch` in scope.
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
// integrity, base, version}}. Coordinates are original-image pixels, x then y, as on the server.

const live = {
  ready: false,     // runtime and both sessions loaded
  value: null,
  photo: null,      // the photo whose embedding is loaded
  embedding: null,  // ort.Tensor float32 shaped as the value's shapes.embedding
  clicks: [],       // the server's clicks of the selected object, then ours not yet confirmed
  hover: null,      // the latest mouse position waiting for a preview
  pointer: null,    // where the mouse last was over the page ({clientX, clientY}), to resume previews
  running: false,
  shown: null,      // what the overlay shows: {kind: "preview" | "click", key}
  timings: [],      // {kind, decode_ms, total_ms (null: not shown)}: read by the benchmark and the browser test
  serverShown: 0,   // when the latest server picture on screen arrived (performance.now())
  masks: {},        // the last decoded mask of each kind, {width, height, data: Uint8Array}
  status: "",       // the line shown under the photo
  beforeBusy: "",   // the line a dropped click's notice replaced, back once a click counts
  dropped: 0,       // clicks Gradio dropped because the last one's event was still open
};
window.samLive = live;
const BUSY = "Still answering the previous click: click again once its mask is shown.";

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

function halfToFloat(bits) {
  if (typeof Float16Array !== "undefined") return Float32Array.from(new Float16Array(bits.buffer));
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i], sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * 2 ** -14 * (frac / 1024)
      : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
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

// The prompt SAM gets for `clicks` (as seg.sam.prompts.Prompts.to_sam does), by the rules the
// server sends (seg.sam.rules.rules): each point click with its mode's label, and the
// last complete box of the box clicks. `cursor` is a hover: a point of the next click's mode, or
// with one box corner pending, the box from that corner to the cursor.
function promptOf(clicks, cursor, mode, rules) {
  const all = cursor ? clicks.concat([[cursor[0], cursor[1], mode]]) : clicks;
  const points = all.filter((c) => c[2] in rules.labels).map((c) => [c[0], c[1], rules.labels[c[2]]]);
  const corners = all.filter((c) => c[2] === rules.box);
  let box = null;
  if (corners.length >= 2) {
    const end = Math.floor(corners.length / 2) * 2, [a, b] = [corners[end - 2], corners[end - 1]];
    box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
  }
  return points.length || box ? {points, box} : null;
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

// The best scored of SAM's three masks (graph outputs 1 to 3), as the server shows after a click.
async function decode(session, prompt, value) {
  const out = await session.run(feeds(prompt, value));
  const scores = out.iou_predictions.data, [, , height, width] = out.masks.dims;
  let best = 1;
  for (let i = 2; i < 4; i++) if (scores[i] > scores[best]) best = i;
  const logits = out.masks.data.subarray(best * height * width, (best + 1) * height * width);
  const data = new Uint8Array(height * width);
  for (let i = 0; i < data.length; i++) data[i] = logits[i] > 0 ? 1 : 0;
  return {width, height, data, score: scores[best]};
}

// The photo as the page shows it, and where its pixels are (Gradio's own click arithmetic: centred,
// never enlarged past its natural size).
function picture() {
  const img = document.querySelector("#sam-canvas img");
  if (!img || !img.naturalWidth) return null;
  const r = img.getBoundingClientRect();
  const scale = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
  return {img, rect: r, scale, left: (r.width - img.naturalWidth * scale) / 2,
          top: (r.height - img.naturalHeight * scale) / 2};
}

function overlay(view) {
  let canvas = document.getElementById("sam-live-overlay");
  const parent = view.img.parentElement;
  if (!canvas || canvas.parentElement !== parent) {
    canvas?.remove();
    canvas = document.createElement("canvas");
    canvas.id = "sam-live-overlay";
    canvas.style.cssText = "position:absolute; pointer-events:none; z-index:5";
    if (getComputedStyle(parent).position === "static") parent.style.position = "relative";
    parent.appendChild(canvas);
  }
  const parentRect = parent.getBoundingClientRect();
  canvas.style.left = `${view.rect.left - parentRect.left + view.left}px`;
  canvas.style.top = `${view.rect.top - parentRect.top + view.top}px`;
  canvas.style.width = `${view.img.naturalWidth * view.scale}px`;
  canvas.style.height = `${view.img.naturalHeight * view.scale}px`;
  return canvas;
}

function paint(mask, kind) {
  const view = picture();
  if (!view) return;
  const canvas = overlay(view);
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d"), pixels = ctx.createImageData(mask.width, mask.height);
  const [r, g, b, a] = kind === "click" ? [255, 176, 0, 150] : [0, 114, 178, 120];  // Okabe-Ito orange, blue
  for (let i = 0; i < mask.data.length; i++) {
    if (!mask.data[i]) continue;
    pixels.data.set([r, g, b, a], i * 4);
  }
  ctx.putImageData(pixels, 0, 0);
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
  const view = picture();
  if (!view || event.target !== view.img) return null;
  const x = Math.round((event.clientX - view.rect.left - view.left) / view.scale);
  const y = Math.round((event.clientY - view.rect.top - view.top) / view.scale);
  if (x < 0 || y < 0 || x >= view.img.naturalWidth || y >= view.img.naturalHeight) return null;
  return [x, y];
}

function usable() {
  return live.ready && live.embedding && live.value && live.photo === live.value.photo;
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

// One decode at a time, always for the newest request: a hover that arrives while one runs replaces
// the waiting one, so a fast mouse never builds a backlog of stale previews.
async function pump() {
  if (live.running || !usable()) return;
  const job = live.click || live.hover;
  if (!job) return;
  if (job === live.click) live.click = null; else live.hover = null;
  live.running = true;
  try {
    const prompt = job.kind === "preview" ? promptOf(live.clicks, job.point, job.mode, live.value.rules) : job.prompt;
    if (prompt) {
      const started = performance.now();
      const session = job.kind === "click" ? live.float32 : live.int8;
      const mask = await decode(session, prompt, live.value);
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
                total_ms: stale ? null : performance.now() - job.at, points: prompt.points.length,
                box: !!prompt.box});
      }
    }
  } catch (error) {
    failed(error);
  } finally {
    live.running = false;
    if (live.click || live.hover) pump();
  }
}

// A session's first run is slow (550-680 ms here against ~220 later): spend it when the first photo's
// embedding arrives, not on the first hover. A hover meanwhile waits, as for any run.
async function warmUp(value) {
  while (live.running) await new Promise((resolve) => setTimeout(resolve, 20));  // a hover came first
  if (live.warm) return;
  live.running = true;
  try {
    const [h, w] = value.size, prompt = {points: [[w / 2, h / 2, value.rules.labels.positive]], box: null};
    for (const session of [live.int8, live.float32]) await session.run(feeds(prompt, value));
    live.warm = true;
  } catch (error) {
    failed(error);
  } finally {
    live.running = false;
    pump();
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

function onLeave(event) {
  if (event.target.closest?.("#sam-canvas") && live.shown?.kind === "preview") clearOverlay();
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
  const view = picture(), arrived = performance.now();
  const shown = () => {
    live.serverShown = Math.max(live.serverShown || 0, arrived);
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
    await warmUp(value);
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

document.addEventListener("mousemove", onMove, true);
document.addEventListener("click", onClick, true);
document.addEventListener("mouseout", onLeave, true);
watch("value", () => update(props.value));
update(props.value);
