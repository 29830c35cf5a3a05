// The pure parts of the Prompt SAM tab's page scripts: a click list to SAM's prompt, the photo's place
// on screen, float16 to float32, the best of SAM's masks. No DOM is touched here: Node's test runner
// checks them (tests/js/prompt.test.js), and tests/test_page_scripts.py holds `promptOf` to the
// server's `Prompts.to_sam` on shared cases. The page runs this file ahead of live.js and keys.js.

// The prompt SAM gets for `clicks` ([[x, y, mode], ...]) by the rules the server sends
// (seg.sam.rules.rules): each point click with its mode's label, and the last complete box of the box
// clicks. `cursor` is a hover: a point of the next click's `mode`, or with one box corner pending, the
// box from that corner to the cursor. Null when there is nothing to prompt yet (one corner alone).
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

// Where a photo of `natural` [width, height] pixels is drawn inside the image element's `rect`
// ({left, top, width, height} on screen): Gradio's own arithmetic, centred and never enlarged.
function photoBox(rect, natural) {
  const [width, height] = natural;
  const scale = Math.min(rect.width / width, rect.height / height, 1);
  return {scale, left: rect.left + (rect.width - width * scale) / 2, top: rect.top + (rect.height - height * scale) / 2,
          width: width * scale, height: height * scale};
}

// The photo's pixel under a screen point, or null outside the photo.
function pixelAt(box, natural, clientX, clientY) {
  const x = Math.round((clientX - box.left) / box.scale), y = Math.round((clientY - box.top) / box.scale);
  return x < 0 || y < 0 || x >= natural[0] || y >= natural[1] ? null : [x, y];
}

// IEEE half floats (the embedding as the server sends it) as float32.
function halfToFloat(bits) {
  if (typeof Float16Array !== "undefined") return Float32Array.from(new Float16Array(bits.buffer, bits.byteOffset,
                                                                                    bits.length));
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i], sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * 2 ** -14 * (frac / 1024)
      : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}

// The best scored of SAM's three masks (outputs 1 to 3 of the four the graph gives), as the server
// shows after a click, thresholded at logit 0 into `into` (a Uint8Array of height x width, reused).
function bestMask(scores, logits, height, width, into) {
  let best = 1;
  for (let i = 2; i < 4; i++) if (scores[i] > scores[best]) best = i;
  const size = height * width, start = best * size;
  for (let i = 0; i < size; i++) into[i] = logits[start + i] > 0 ? 1 : 0;
  return {width, height, data: into, score: scores[best]};
}

if (typeof module !== "undefined") module.exports = {promptOf, photoBox, pixelAt, halfToFloat, bestMask};
