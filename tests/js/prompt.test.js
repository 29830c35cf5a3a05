// The pure parts of the Prompt SAM page scripts (ui/tabs/sam/prompt.js), under Node's own test runner:
// `node --test tests/js/`, run by tests/test_page_scripts.py.
const test = require("node:test");
const assert = require("node:assert/strict");
const {promptOf, photoBox, pixelAt, halfToFloat, bestMask} = require("../../ui/tabs/sam/prompt.js");

const RULES = {labels: {positive: 1, negative: 0}, box: "box", box_labels: [2, 3], padding_label: -1,
               clicks_per_object: 20};

test("points keep their labels; two box corners make a box, in either order", () => {
  const prompt = promptOf([[10, 20, "positive"], [30, 40, "negative"], [90, 80, "box"], [50, 60, "box"]], null, null,
                          RULES);
  assert.deepEqual(prompt, {points: [[10, 20, 1], [30, 40, 0]], box: [50, 60, 90, 80]});
});

test("one corner alone is no prompt; a hover with one corner pending previews the box to the cursor", () => {
  assert.equal(promptOf([[5, 5, "box"]], null, null, RULES), null);
  assert.deepEqual(promptOf([[5, 5, "box"]], [25, 35], "box", RULES), {points: [], box: [5, 5, 25, 35]});
  assert.deepEqual(promptOf([], [7, 8], "negative", RULES), {points: [[7, 8, 0]], box: null});
});

test("a third corner starts a new box: the last complete one stays", () => {
  const prompt = promptOf([[0, 0, "box"], [10, 10, "box"], [50, 50, "box"]], null, null, RULES);
  assert.deepEqual(prompt.box, [0, 0, 10, 10]);
});

test("the photo is centred in its element and never enlarged", () => {
  const small = photoBox({left: 100, top: 50, width: 800, height: 600}, [400, 300]);
  assert.deepEqual(small, {scale: 1, left: 300, top: 200, width: 400, height: 300});
  const large = photoBox({left: 0, top: 0, width: 480, height: 560}, [960, 720]);
  assert.equal(large.scale, 0.5);
  assert.equal(large.top, (560 - 360) / 2);
  assert.deepEqual(pixelAt(large, [960, 720], 240, 100 + 180), [480, 360]);
  assert.equal(pixelAt(large, [960, 720], 240, 50), null);  // above the photo, in its element's margin
});

test("half floats: ones, halves, the smallest subnormal, infinities", () => {
  const bits = Uint16Array.from([0x3c00, 0xb800, 0x0001, 0x7c00, 0x0000]);
  const floats = halfToFloat(bits);
  assert.deepEqual(Array.from(floats.slice(0, 3)), [1, -0.5, 2 ** -24]);
  assert.equal(floats[3], Infinity);
  assert.equal(floats[4], 0);
});

test("the best of the three masks (outputs 1 to 3), thresholded at 0, into the given buffer", () => {
  const [h, w] = [1, 3];
  const logits = Float32Array.from([9, 9, 9, -1, 2, -3, 4, -5, 6, 1, 1, 1]);
  const into = new Uint8Array(h * w);
  const mask = bestMask(Float32Array.from([0.99, 0.2, 0.7, 0.5]), logits, h, w, into);
  assert.equal(mask.data, into);  // no new buffer
  assert.deepEqual(Array.from(mask.data), [1, 0, 1]);  // the second mask (score 0.7), not output 0
  assert.equal(mask.score, Float32Array.from([0.7])[0]);
});
