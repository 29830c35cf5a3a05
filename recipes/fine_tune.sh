# Sourced by the recipes that fine-tune as the shipped models were (camvid_distill, camvid_quarter,
# camvid_tune): one definition of that tune (recipes/camvid_prior.sh ship, chosen on 0006R0) and of its
# two lengths, 8 epochs with the last 4 averaged (FT_EPOCHS and FT_AVERAGE change it) and the longer one,
# 16 with the last 8, which beat it on 0006R0 (docs/training.md, "A longer fine-tune").
FINE_TUNE=(--class-weights sqrt --lr 5e-4 --warmup-steps 0 --fp16-weights)
SHORT_TUNE=(--epochs "${FT_EPOCHS:-8}" --average-last "${FT_AVERAGE:-4}")
LONG_TUNE=(--epochs 16 --average-last 8)
