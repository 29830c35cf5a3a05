"""Small SAMs of every generation, built from transformers' real classes with random weights and saved
with save_pretrained, as a Hub checkpoint would be: what the tests load the SAM family from. SAM 3's
tokenizer is built here too (a byte-level vocabulary with no merges: one token per character)."""

import json
from pathlib import Path

SIDE = 64  # the input side of the SAM, SAM-HQ and SAM 2 test models; SAM 3's is 56 (14-pixel patches)
DECODER = dict(hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32)


def _sam(kind: str):
    import transformers as T

    vision = dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2, image_size=SIDE,
                  patch_size=8, global_attn_indexes=[1], window_size=4, num_pos_feats=16, mlp_dim=64)
    prompt = dict(hidden_size=32, image_size=SIDE, patch_size=8, mask_input_channels=4)
    images = T.SamImageProcessor(size={"longest_edge": SIDE}, pad_size={"height": SIDE, "width": SIDE},
                                 mask_size={"longest_edge": SIDE // 2},
                                 mask_pad_size={"height": SIDE // 2, "width": SIDE // 2})
    if kind == "sam":
        config = T.SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=DECODER)
        return T.SamModel(config), T.SamProcessor(images)
    config = T.SamHQConfig(vision_config=vision, prompt_encoder_config=prompt,
                           mask_decoder_config=dict(DECODER, vit_dim=32))
    return T.SamHQModel(config), T.SamHQProcessor(images)


def _sam2():
    import transformers as T

    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[SIDE, SIDE],
                    blocks_per_stage=[1, 2, 1, 1], embed_dim_per_stage=[16, 32, 64, 128],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 2, 2],
                    global_attention_blocks=[2], window_positional_embedding_background_size=[2, 2])
    vision = dict(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                  backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32)
    prompt = dict(hidden_size=32, image_size=SIDE, patch_size=16, mask_input_channels=4)
    config = T.Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=DECODER)
    return T.Sam2Model(config), T.Sam2Processor(T.Sam2ImageProcessor(size={"height": SIDE, "width": SIDE}))


def _edgetam():
    """EdgeTAM: SAM 2's prompt encoder and decoder on a timm backbone (RepViT in the real checkpoint; timm's
    own smallest four-stage test network here, built from its config with no download)."""
    import transformers as T

    backbone = dict(model_type="timm_wrapper", architecture="test_convnext", do_pooling=False, num_classes=2,
                    model_args=dict(features_only=True, out_indices=[0, 1, 2, 3], in_chans=3))
    vision = dict(backbone_config=backbone, backbone_channel_list=[64, 48, 32, 24],
                  backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32)
    prompt = dict(hidden_size=32, image_size=SIDE, patch_size=16, mask_input_channels=4)
    config = T.EdgeTamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=DECODER)
    return T.EdgeTamModel(config), T.Sam2Processor(T.Sam2ImageProcessor(size={"height": SIDE, "width": SIDE}))


SAM3_SIDE = 56
SAM3_VISION = dict(backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2, image_size=SAM3_SIDE,
                                        patch_size=14, window_size=2, global_attn_indexes=[1],
                                        pretrain_image_size=SAM3_SIDE),
                   fpn_hidden_size=32, scale_factors=[4.0, 2.0, 1.0, 0.5],
                   backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]])


def _sam3_tracker():
    import transformers as T

    prompt = dict(hidden_size=32, image_size=SAM3_SIDE, patch_size=14, mask_input_channels=4)
    config = T.Sam3TrackerConfig(vision_config=SAM3_VISION, prompt_encoder_config=prompt, mask_decoder_config=DECODER)
    images = T.Sam2ImageProcessor(size={"height": SAM3_SIDE, "width": SAM3_SIDE})
    return T.Sam3TrackerModel(config), T.Sam3TrackerProcessor(images)


def byte_level(folder: Path):
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols, each alone and ending a word, and the two
    markers: no merges, so every character is a token."""
    import transformers as T

    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return T.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def _sam3_detector(folder: Path):
    """SAM 3's detector alone (Sam3Model): text and exemplar prompts, no tracker to answer clicks."""
    import transformers as T

    tokenizer = byte_level(folder)
    config = T.Sam3Config(**_sam3_detector_config(len(tokenizer)))
    images = T.Sam3ImageProcessor(size={"height": SAM3_SIDE, "width": SAM3_SIDE})
    return T.Sam3Model(config), T.Sam3Processor(images, tokenizer)


def _sam3_detector_config(vocabulary: int) -> dict:
    small = dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64)
    text = dict(vocab_size=vocabulary, hidden_size=32, intermediate_size=64, projection_dim=32,
                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32)
    return dict(vision_config=SAM3_VISION, text_config=text,
                geometry_encoder_config=dict(small, mask_fuser_hidden_size=32, mask_fuser_num_layers=1),
                detr_encoder_config=small, detr_decoder_config=dict(small, num_queries=8),
                mask_decoder_config=dict(hidden_size=32, num_upsampling_stages=2))


def _save_sam3(folder: Path) -> None:
    """SAM 3 as facebook/sam3 is released: one Sam3VideoModel checkpoint ("sam3_video") holding the
    detector (detector_model.*) and the tracker (tracker_model.*, whose backbone is the detector's), the
    weights under the module names the release's conversion wrote (transformers' own save_pretrained
    renames the tracker's on the way out), with its processor and tokenizer."""
    import transformers as T
    from safetensors.torch import save_file

    tokenizer = byte_level(folder)
    prompt = dict(hidden_size=32, image_size=SAM3_SIDE, patch_size=14, mask_input_channels=4)
    config = T.Sam3VideoConfig(detector_config=_sam3_detector_config(len(tokenizer)),
                               tracker_config=dict(vision_config=SAM3_VISION, prompt_encoder_config=prompt,
                                                   mask_decoder_config=DECODER, image_size=SAM3_SIDE))
    config.architectures = ["Sam3VideoModel"]
    model = T.Sam3VideoModel(config)
    config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    size = {"height": SAM3_SIDE, "width": SAM3_SIDE}
    processor = T.Sam3VideoProcessor(image_processor=T.Sam3ImageProcessor(size=size),
                                     video_processor=T.Sam2VideoVideoProcessor(size=size), tokenizer=tokenizer)
    processor.save_pretrained(folder)


def save_tiny(kind: str, folder: Path, seed: int = 0) -> Path:
    """A small `kind` ("sam", "sam_hq", "sam2", "edgetam", "sam3_tracker", "sam3_detector", or "sam3":
    both of SAM 3's parts in one checkpoint, as released) saved in `folder` with its processor; the
    same `seed` gives the same weights."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if kind == "sam3":
        _save_sam3(folder)
        return folder
    if kind in ("sam", "sam_hq"):
        model, processor = _sam(kind)
    elif kind == "sam2":
        model, processor = _sam2()
    elif kind == "edgetam":
        model, processor = _edgetam()
    elif kind == "sam3_tracker":
        model, processor = _sam3_tracker()
    elif kind == "sam3_detector":
        model, processor = _sam3_detector(folder)
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
