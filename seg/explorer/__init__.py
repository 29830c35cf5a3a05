"""What the Segmentation explorer app is made of, apart from its UI: the model catalogue (zoo), one
interface for semantic models (semantic), comparing them on a photo (compare), SAM's prompts and
objects (prompts), exports (export) and the Learn tab's demos (demos). Imports torch, numpy and the
rest of `seg`; never gradio."""
