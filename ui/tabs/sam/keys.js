// Prompt SAM without a mouse: run by gr.HTML as `js_on_load` (`element` is that component), after
// prompt.js and page.js (photoShown, overPhoto, whenThere).
//
// The photo takes the keyboard's focus (Tab reaches it); a cross-hair shows where the next click goes.
// Arrow keys move it (with Shift, ten times as far); Enter or Space clicks there in the mode the "Next
// click" radio shows; P, N and B click there as a positive point, a negative point or a box corner.
// A keyboard click is the very event a mouse click makes, at the cross-hair's place on the photo, so
// the server (the image's select event) and the browser decoder (ui/tabs/sam/live.js) see no difference.

const MODES = {p: "positive", n: "negative", b: "box"};
const STEP = 0.02;  // an arrow moves the cross-hair by 2% of the photo's side
const keys = {x: 0.5, y: 0.5};  // the cross-hair, as fractions of the photo's width and height

function area() {
  return document.getElementById("sam-canvas");
}

// The cross-hair's place on screen.
function aim(view) {
  return [view.box.left + keys.x * view.box.width, view.box.top + keys.y * view.box.height];
}

const CROSSHAIR = "position:absolute; width:23px; height:23px; margin:-12px 0 0 -12px; z-index:6; " +
  "pointer-events:none; background: linear-gradient(#fff, #fff) center/3px 100% no-repeat, " +
  "linear-gradient(#fff, #fff) center/100% 3px no-repeat; outline:2px solid #000; border-radius:50%";

function place() {
  const view = photoShown(), focused = area()?.matches(":focus-visible");  // a mouse's focus shows no cross-hair
  const mark = document.getElementById("sam-crosshair");
  if (!view || !focused) { if (mark) mark.style.display = "none"; return; }
  const parentRect = view.img.parentElement.getBoundingClientRect();
  const shown = overPhoto(view, "sam-crosshair", "div", CROSSHAIR);
  shown.style.display = "block";
  const [x, y] = aim(view);
  shown.style.left = `${x - parentRect.left}px`;
  shown.style.top = `${y - parentRect.top}px`;
}

function setMode(mode) {
  const input = document.querySelector(`#sam-mode input[value="${mode}"]`);
  if (input && !input.checked) input.click();
}

function click() {
  const view = photoShown();
  if (!view) return;
  const [clientX, clientY] = aim(view);
  view.img.dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true, clientX, clientY, view: window}));
}

function onKey(event) {
  if (document.activeElement !== area() || event.altKey || event.ctrlKey || event.metaKey) return;
  const step = event.shiftKey ? 10 * STEP : STEP, key = event.key.toLowerCase();
  const moves = {arrowleft: [-step, 0], arrowright: [step, 0], arrowup: [0, -step], arrowdown: [0, step]};
  if (key in moves) {
    keys.x = Math.min(1, Math.max(0, keys.x + moves[key][0]));
    keys.y = Math.min(1, Math.max(0, keys.y + moves[key][1]));
    place();
  } else if (key === "enter" || key === " ") {
    click();
  } else if (key in MODES) {
    setMode(MODES[key]);
    setTimeout(click, 50);  // once the radio's change has reached the page
  } else {
    return;
  }
  event.preventDefault();
}

// The photo's area takes the focus once it exists (Gradio may draw it after this component); the
// listeners go on it, once: a second run of this script removes the first run's.
function ready(target) {
  target.samKeysListeners?.abort();
  const listeners = new AbortController(), options = {signal: listeners.signal};
  target.samKeysListeners = listeners;
  target.tabIndex = 0;
  target.setAttribute("aria-label", "The photo: arrow keys move the cross-hair; Enter clicks there; P, N and B " +
                                    "click a positive point, a negative point or a box corner");
  target.addEventListener("focus", place, options);
  target.addEventListener("blur", place, options);
  target.addEventListener("keydown", onKey, {...options, capture: true});
  window.addEventListener("resize", place, options);
}

whenThere("sam-canvas", ready);
