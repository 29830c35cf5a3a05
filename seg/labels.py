"""Label conventions shared by the datasets, losses, metrics and evaluation."""

# The one ignore label. Datasets map their "void"/"unlabelled" pixels to it, the losses skip it,
# the metrics leave it out of every count. 255 keeps it outside any realistic class range and
# inside uint8, so label maps stay 8-bit PNGs.
IGNORE_INDEX = 255

# A folder of predicted label maps, as `seg.cli.predict` writes it and `seg.cli.evaluate --pred-dir` reads it:
# `photo.png`'s labels in `photo_labels.png`, and the classes they number in one `classes.json`
# ({"classes": names, "palette": colours, "ground_truth_ignore": the value the card's dataset's own
# label files hold where unlabelled, e.g. CamVid's 11}).
LABELS_SUFFIX = "_labels"
PREDICTIONS_CARD = "classes.json"
