"""The Prompt SAM tab: `tab` (photo, clicks, objects), `files` (export, import), `labels` (classes,
painting order, ground truth, a model's regions as prompts), `models` (the semantic models, the click
curve), `browser` (what a browser needs to decode prompts itself), with the page's `live.js` (that
decoder) and `keys.js` (prompts from the keyboard)."""
