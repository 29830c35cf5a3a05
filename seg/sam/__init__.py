"""SAM, the promptable segmenter, in one place: the model and its weights, the prompt rules, the
browser's ONNX decoder, automatic masks, prompts and objects as values, and what SAM is measured by.

- `model`: SAM (vit_b/l/h) and MobileSAM (vit_t): embed a photo once, prompt it many times.
- `weights`: the variants, their checkpoints (given, Hub cache, verified download), the build.
- `rules`: points, labels and boxes checked before any work; the rules the browser is sent.
- `onnx_decoder`: the prompt encoder and mask decoder exported to ONNX, decoded by ONNX Runtime.
- `everything`: every object at once (a grid of points, filtered, de-duplicated).
- `regions`: box-and-point prompts in batches; `refine`: a semantic model's regions refined by SAM.
- `prompts`: clicks, objects and masks as immutable values; `prompt_text`: the API's JSON read into them.
- `objects`: automatic masks as editable objects, COCO export; `truth`: classed objects as a ground truth.
- `relate`: SAM's mask against the semantic models' regions; `clicks`: the click curve, NoC@85/90.

Nothing here imports segment-anything, MobileSAM or ONNX Runtime until a model is built or run.
"""
