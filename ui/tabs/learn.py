"""The Learn tab: three small experiments on synthetic scenes. Skip connections (FCN-32s, FCN-8s,
U-Net on one scene, with averages over others), cross-entropy against Dice on a tiny foreground, and
the receptive field of dilated convolutions."""

import threading

import gradio as gr
import numpy as np
import pandas as pd

from seg.data.synthetic import PALETTE as SYNTHETIC_PALETTE
from seg.explorer import demos
from seg.explorer.zoo import TITLES
from seg.visualize import colorize, draw_contours, enlarge

from ..context import Context
from ..jobs import handler
from .events import PAGE

AVERAGE_SCENES = range(10_001, 10_033)  # 32 scenes, apart from the ones "New scene" shows
LEARN_SIDE = 384  # Learn's tiles at least this wide: a block of FCN-32s' coarse grid is then visible
FIELD_SIDE = 369  # the receptive field's picture: its 41x41 window enlarged 9 times
RACE_STEPS = 50  # steps per press of "Train"
LOSS_NAMES = {"ce": "cross-entropy", "dice": "Dice"}
LOSS_COLOURS = {"cross-entropy": "#0072B2", "Dice": "#E69F00"}  # Okabe-Ito blue and orange
IOU_EVERY = 5  # steps between two measurements of the held-out IoU (each a pass over the held-out scenes)
RECEPTIVE_PRESETS = {"one 3x3, rate 1": (1,), "one 3x3, rate 2": (2,), "one 3x3, rate 4": (4,),
                     "three layers, rates 2-2-2 (gridding)": (2, 2, 2),
                     "three layers, rates 1-2-3 (hybrid, no holes)": (1, 2, 3),
                     "four layers, rates 1-2-4-8": (1, 2, 4, 8)}


def learn_tile(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A synthetic label map in colour, enlarged, with the true borders drawn over it in white."""
    return draw_contours(enlarge(colorize(labels, SYNTHETIC_PALETTE), LEARN_SIDE), enlarge(truth, LEARN_SIDE),
                         color=(255, 255, 255))


class LearnTab:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._averages, self._lock = None, threading.Lock()

    def scene_averages(self) -> dict[str, dict]:
        """The three models' scores over AVERAGE_SCENES (about 2 s, once per app)."""
        with self._lock:
            if self._averages is None:
                self._averages = demos.average_scores(self.ctx.zoo.synthetic(), AVERAGE_SCENES)
            return self._averages

    @handler("learn_seconds", "the scene comparison", models=True)
    def scene(self, seed):
        seed = int(seed) + 1
        image, labels = demos.new_scene(seed)
        models = self.ctx.zoo.synthetic()
        if not models:
            raise gr.Error("the synthetic demo weights are missing from weights/synthetic: run "
                           "`recipes/camvid_cpu.sh synthetic`", print_exception=False)
        results = demos.scene_comparison(models, image, labels)
        gallery = [(learn_tile(labels, labels), "ground truth")] + [
            (learn_tile(r["labels"], labels), f"{TITLES[name]} · BF {r['boundary_f']:.2f}")
            for name, r in results.items()]
        averages = self.scene_averages()  # one scene can go against the trend: show the trend beside it
        count = len(AVERAGE_SCENES)
        table = pd.DataFrame([{"model": TITLES[n], "BF, this scene": r["boundary_f"], "mIoU, this scene": r["miou"],
                               f"BF, {count} scenes": averages[n]["boundary_f"],
                               f"mIoU, {count} scenes": averages[n]["miou"]}
                              for n, r in results.items()]).round(3)
        return seed, enlarge(image, LEARN_SIDE // 2), gallery, table

    def first_scene(self, seed):
        """The first scene, when the tab opens: no empty gallery on a first visit."""
        return self.scene(seed) if seed == 0 else (gr.skip(),) * 4

    @handler("learn_seconds", "training", models=True)
    def train(self, race, object_size, steps: int = RACE_STEPS, progress=gr.Progress()):
        """`steps` more steps of both models (a new pair when the object size changed), the held-out
        IoU measured every IOU_EVERY steps and plotted from the first step on."""
        if race is None or abs(race.object_size - object_size) > 1e-9:
            race = demos.LossRace(object_size=object_size)
            race.record_iou()  # where both start: the same weights, the same IoU
        for _ in progress.tqdm(range(int(steps)), desc="training both models"):
            race.step()
            if race.steps % IOU_EVERY == 0:
                race.record_iou()
        iou = race.record_iou()
        curve = pd.DataFrame([{"step": step, "IoU": value, "trained with": LOSS_NAMES[name]}
                              for step, values in race.iou_history for name, value in values.items()])
        losses = pd.DataFrame([{"step": i + 1, "loss": v, "trained with": LOSS_NAMES[name]}
                               for name, values in race.history.items() for i, v in enumerate(values)])
        image, labels = race.val.read(0)
        preds = race.predict(image)
        gallery = [(draw_contours(enlarge(image, LEARN_SIDE), enlarge(labels, LEARN_SIDE), color=(255, 255, 255)),
                    "held-out scene"), (learn_tile(labels, labels), "ground truth")] + [
            (learn_tile(p, labels), f"{LOSS_NAMES[name]} · IoU {iou[name]:.2f}") for name, p in preds.items()]
        text = (f"After {race.steps} steps, mean IoU over the object classes on {len(race.val)} held-out scenes: "
                f"cross-entropy **{iou['ce']:.2f}**, Dice **{iou['dice']:.2f}**. Objects are {object_size:.0%} of "
                f"the side. Press again to train {RACE_STEPS} more steps.")
        return race, curve, losses, gallery, text

    @handler("learn_seconds", "the receptive field", models=False)
    def receptive(self, choice):
        if choice not in RECEPTIVE_PRESETS:
            raise ValueError(f"choose one of: {', '.join(RECEPTIVE_PRESETS)}")
        rates = RECEPTIVE_PRESETS[choice]
        field = demos.receptive_field(rates)
        covered = int((field > 0).sum())
        return enlarge(demos.receptive_heatmap(field), FIELD_SIDE), \
            f"Rates {rates}: the centre output sees **{covered}** input pixels of a {len(field)}x{len(field)} window."

    def layout(self, demo: gr.Blocks, tab: gr.Tab) -> None:
        """The tab's components and events."""
        gr.Markdown("### Skip connections: FCN-32s vs FCN-8s vs U-Net\nFCN-32s predicts on a grid 32 times "
                    "coarser than the image and upsamples it; FCN-8s adds finer features from two earlier "
                    "stages; U-Net decodes back to full resolution with a skip at every scale. Watch the "
                    "boundaries: the white lines are the true ones. BF is the boundary F-score with a 1-pixel "
                    "tolerance; one scene can go against the trend, so the table also gives each model's "
                    f"scores over {len(AVERAGE_SCENES)} other scenes.")
        seed = gr.State(0)
        with gr.Row(equal_height=True):
            scene = gr.Image(label="Scene", interactive=False, height=220, scale=1)
            with gr.Column(scale=3):
                scene_table = gr.Dataframe(interactive=False, elem_id="scene-table")
                new_scene = gr.Button("New scene", variant="primary", elem_id="new-scene")
        scene_preds = gr.Gallery(label="Ground truth and predictions", columns=4, height="auto",
                                 object_fit="contain", elem_id="scene-preds")
        new_scene.click(self.scene, seed, [seed, scene, scene_preds, scene_table], **PAGE)
        tab.select(self.first_scene, seed, [seed, scene, scene_preds, scene_table], **PAGE)

        gr.Markdown("### Cross-entropy vs Dice on a small foreground\nTwo copies of one small U-Net see the "
                    "same batches. With tiny objects, most pixels are background: cross-entropy can get a "
                    "low loss by predicting background everywhere; Dice scores each class's overlap, so the "
                    "objects count as much as the background.")
        race = gr.State(None)
        with gr.Row():
            object_size = gr.Slider(0.04, 0.3, value=0.08, step=0.01, label="Object size (fraction of side)",
                                    info="changing it starts both models afresh")
            train = gr.Button(f"Train {RACE_STEPS} steps", variant="primary", elem_id="train")
        with gr.Row():
            # the series' colours are fixed and named in the labels: the plot's own legend can be cut off
            curve = gr.LinePlot(x="step", y="IoU", color="trained with", color_map=LOSS_COLOURS, y_lim=[0, 1],
                                label=f"Mean IoU over the objects, {demos.LossRace.HELD_OUT} held-out scenes (blue: "
                                      "cross-entropy, orange: Dice)", elem_id="race-iou")
            losses = gr.LinePlot(x="step", y="loss", color="trained with", color_map=LOSS_COLOURS,
                                 label="Training loss (blue: cross-entropy, orange: Dice)")
        race_preds = gr.Gallery(label="One held-out scene (true borders drawn)", columns=4, height="auto",
                                object_fit="contain", elem_id="race-preds")
        race_text = gr.Markdown(f"Press **Train {RACE_STEPS} steps**: both models start from the same weights.",
                                elem_id="race-text")
        train.click(self.train, [race, object_size], [race, curve, losses, race_preds, race_text], **PAGE)

        gr.Markdown("### Dilated convolutions and gridding\nA 3x3 kernel at rate r samples 9 pixels r apart. "
                    "Stacking equal rates leaves holes the network never sees; mixing rates fills them.")
        with gr.Row():
            preset = gr.Radio(list(RECEPTIVE_PRESETS), value="three layers, rates 2-2-2 (gridding)", label="Layers")
            field = gr.Image(label="Input pixels that reach the centre output (brighter: more paths)",
                             interactive=False, height=380)
        field_text = gr.Markdown()
        preset.change(self.receptive, preset, [field, field_text], **PAGE)
        demo.load(self.receptive, preset, [field, field_text], **PAGE)
