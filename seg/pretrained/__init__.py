"""Adapters for pretrained semantic models: SegFormer and Mask2Former (transformers), with their
classes mapped onto CamVid's. SAM has its own package, `seg.sam`.

Each adapter imports its heavy dependency only when used, so `import seg` needs torch alone.

- `seg.pretrained.hub_segmenter`: a transformers model and its processor, one inference path.
- `seg.pretrained.segformer`, `seg.pretrained.mask2former`: `.load(hub id or folder)`, `.segment(image)`.
- `seg.pretrained.label_mapping`: Cityscapes and ADE20K classes onto CamVid's 11 (+ "other").
"""
