"""Label conventions shared by the datasets, losses, metrics and evaluation."""

# The one ignore label. Datasets map their "void"/"unlabelled" pixels to it, the losses skip it,
# the metrics leave it out of every count. 255 keeps it outside any realistic class range and
# inside uint8, so label maps stay 8-bit PNGs.
IGNORE_INDEX = 255
