"""Adapters for pretrained models: SegFormer (transformers) and SAM / MobileSAM.

Each adapter imports its heavy dependency only when used, so `import seg` needs torch alone.

- `seg.pretrained.segformer`: `SegFormerSegmenter.load(hub id or folder)`, `.segment(image)`.
- `seg.pretrained.label_mapping`: Cityscapes and ADE20K classes onto CamVid's 11 (+ "other").
- `seg.pretrained.sam`: `Sam.load("vit_t" | "vit_b" | ...)`, `.embed(image)`, `.predict(...)`.
- `seg.pretrained.sam_weights`: where SAM's checkpoints come from (`find_checkpoint`) and `build_sam`.
"""
