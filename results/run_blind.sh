#!/usr/bin/env bash
# The blind-scan protocol run behind docs/results.md's blind section and the shipped model's card,
# as run on the 2-core CPU machine of BENCHMARKS.md (76 min). The committed results/blind-cnn-log
# was written by the same command to a scratch directory (its results.json records that path) and
# copied here; --cache only keeps the sample pools between runs, it changes no number.
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/halo-train
$H blind --out results/blind-cnn-log --epochs 30 --steps 40 --patience 6 --cache "${POOL_CACHE:-/tmp/halo-pools}"
# The shipped model is a seed ensemble: the same recipe trained three times (training seeds 0, 1, 2),
# the probabilities averaged in one ONNX graph (training/ensemble.py). Its blind run, with the same
# folds, pools and injections as the run above (~95 min on this machine, alone):
$H blind --out results/blind-cnn-log-ens3 --epochs 30 --steps 40 --patience 6 --ensemble 3 --no-baselines \
  --cache "${POOL_CACHE:-/tmp/halo-pools}"
# The shipped model: that recipe on 29 training fields, early-stopped on 8, its threshold chosen on
# those 8 and 9 calibration fields (halo-train ship prints the split), the blind run's numbers in its card.
# It was shipped while its blind run was going, and the run's results joined the card afterwards with
# card-metrics, which checks that the run measured the card's recipe.
$H ship --out models/halo-classifier.onnx --epochs 30 --steps 40 --patience 6 --ensemble 3 \
  --cache "${POOL_CACHE:-/tmp/halo-pools}"
$H card-metrics models/halo-classifier.onnx --metrics results/blind-cnn-log-ens3
# The single-CNN model shipped before (commit 04a35ee): the same recipe without --ensemble, with
# --metrics results/blind-cnn-log.
# Variants, each one setting away from the run above (same folds, pools and injection grid), paired with it in
# docs/blind-variants.md by `halo-train compare`; written to scratch directories and copied here like the first:
# $H blind --out results/blind-cnn-log-seed1 --epochs 30 --steps 40 --patience 6 --training-seed 1 --no-baselines
# $H blind --out results/blind-cnn-log-seed2 --epochs 30 --steps 40 --patience 6 --training-seed 2 --no-baselines
# $H blind --out results/blind-cnn-snr-log --epochs 30 --steps 40 --patience 6 --normalisation snr-log
# $H blind --out results/blind-cnn-log-mock10 --epochs 30 --steps 40 --patience 6 --mock-fields 10 --no-baselines
# $H blind --out results/blind-cnn-log-mining2 --epochs 30 --steps 40 --patience 6 --mining-rounds 2 --no-baselines
# (35-57 min each, two at a time on the 2-core machine of BENCHMARKS.md).
# The ensemble run above was written to /work/scratch/blind-ens3/run and copied here like the others.
