#!/usr/bin/env bash
# The generative-augmentation experiment behind docs/generative.md, as run on the 2-core CPU
# machine of BENCHMARKS.md (no GPU); the steps ran in two chains side by side. Generators and samples go to
# runs/generative/ (not committed: tens of MB of weights); the JSON results go to results/.
#
# Leakage rules (docs/generative.md): a generator used in a fold never saw that fold's test
# sources. The paper protocol's test split is the paper's, so its generator trains on the
# paper's 18 training halos. The honest grouped protocol gets one DDPM per fold, trained on
# the other folds' halos: 3 folds with 1000-step DDPMs (~18 min each on one core), then 2
# folds with 2000-step DDPMs, since the 1000-step ones drew unstructured noise.
# `halo-train folds` lists each fold's test sources: the folds `classifier --protocol
# grouped --folds K` uses with seed 0.
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/halo-train
G=runs/generative
LOG="--epochs 40 --steps 30 --patience 8 --normalisation log"   # the CNN's best classic settings (run_cpu_protocols.sh)
DENSE="--epochs 20 --steps 30 --patience 4 --normalisation log"
mkdir -p $G

# 1. Generators and samples (DDIM, 50 steps).
#    DDPM compact on the paper's training split: 3000 steps, ~55 min on one core.
$H ddpm --config compact --out $G/ddpm-compact-train --threads 1 --steps 3000
$H generate --model $G/ddpm-compact-train --n 512 --out $G/ddpm-compact-train-samples --threads 1
#    WGAN-GP compact conditioned on the halo type: stopped at 250 of its 2000 steps (the CPU
#    went to the DDPMs), later resumed from that checkpoint to all 2000 (~28 min on one core);
#    its samples are measured, not used in classifiers.
$H wgan --config compact --condition type --threads 1 --out $G/wgan-compact-train --stop-after 250
$H wgan --config compact --condition type --threads 1 --out $G/wgan-compact-train --resume
$H generate --model $G/wgan-compact-train --n 512 --out $G/wgan-compact-train-samples --threads 1
#    One DDPM per fold of the honest protocol, on all halos but that fold's test sources.
for k in 3:1000 2:2000; do
  folds=${k%%:*} steps=${k##*:}
  $H folds --folds $folds --repeats 1 --seed 0 | while IFS=$'\t' read -r repeat fold names; do
    $H ddpm --config compact --split all --exclude "$names" --steps $steps --threads 1 --out $G/ddpm-grouped$folds-fold$fold
    $H generate --model $G/ddpm-grouped$folds-fold$fold --n 256 --out $G/ddpm-grouped$folds-fold$fold-samples --threads 1
  done
done
#    One WGAN-GP per fold of the 2-fold protocol (type-conditioned, 2000 compact steps, ~40 min
#    each on one core, the two side by side), for the grouped and blind comparisons.
$H folds --folds 2 --repeats 1 --seed 0 | while IFS=$'\t' read -r repeat fold names; do
  $H wgan --config compact --condition type --split all --exclude "$names" --threads 1 --out $G/wgan-grouped2-fold$fold
  $H generate --model $G/wgan-grouped2-fold$fold --n 256 --out $G/wgan-grouped2-fold$fold-samples --threads 1
done
#    The same 2-fold DDPMs with the clipped sky scaled to 0 (--zero-centred; ~37 min each, side by side).
$H folds --folds 2 --repeats 1 --seed 0 | while IFS=$'\t' read -r repeat fold names; do
  $H ddpm --config compact --zero-centred --split all --exclude "$names" --steps 2000 --threads 1 --out $G/ddpm0-grouped2-fold$fold
  $H generate --model $G/ddpm0-grouped2-fold$fold --n 256 --out $G/ddpm0-grouped2-fold$fold-samples --threads 1
done
$H metrics --generated $G/ddpm0-grouped2-fold0-samples --n 256 --out results/generative-quality-grouped2-ddpm0-fold0-random.json --threads 1
$H classifier --arch cnn --protocol grouped --folds 2 --repeats 1 $LOG --augment ddpm \
  --generated $G/ddpm0-grouped2-fold0-samples $G/ddpm0-grouped2-fold1-samples --out results/grouped2-cnn-log-ddpm0
FOLDS3="$G/ddpm-grouped3-fold0-samples $G/ddpm-grouped3-fold1-samples $G/ddpm-grouped3-fold2-samples"
FOLDS2="$G/ddpm-grouped2-fold0-samples $G/ddpm-grouped2-fold1-samples"
WGAN2="$G/wgan-grouped2-fold0-samples $G/wgan-grouped2-fold1-samples"
ATT="--epochs 20 --steps 30 --patience 4 --normalisation log"   # grouped-attention-log's settings

# 2. Image quality against the real halos: pixel histograms, FID/KID on two offline encoders
#    (a fixed random network; a CNN classifier trained on all 46 sources), each with the
#    real-vs-real floor and the trivial baselines beside the generators.
$H classifier --arch cnn $LOG --out $G/encoder-cnn
$H metrics --generated $G/ddpm-compact-train-samples $G/wgan-compact-train-samples --out results/generative-quality-random.json --threads 1
$H metrics --generated $G/ddpm-compact-train-samples $G/wgan-compact-train-samples --encoder classifier:$G/encoder-cnn \
  --out results/generative-quality-classifier.json --threads 1
$H metrics --generated $G/ddpm-grouped3-fold0-samples --n 256 --out results/generative-quality-grouped3-fold0-random.json --threads 1
$H metrics --generated $G/ddpm-grouped2-fold0-samples --n 256 --out results/generative-quality-grouped2-fold0-random.json --threads 1
#    (written to a scratch directory, copied here)
$H metrics --generated $G/wgan-grouped2-fold0-samples --n 256 --out results/generative-quality-grouped2-wgan-fold0-random.json --threads 1

# 3. Classifiers with and without DDPM halos, paired: same seeds, same splits, same weighted draws.
#    Paper protocol (flattering): 5 runs each.
$H classifier --arch cnn --protocol paper --runs 5 $LOG --draws weighted --out results/paper-cnn-log-control
$H classifier --arch cnn --protocol paper --runs 5 $LOG --augment ddpm --generated $G/ddpm-compact-train-samples --out results/paper-cnn-log-ddpm
#    The WGAN-GP trained to 2000 steps on the same 18 halos (written to a scratch directory, copied here).
$H classifier --arch cnn --protocol paper --runs 5 $LOG --augment wgan --generated $G/wgan-compact-train-samples --out results/paper-cnn-log-wgan
#    The dense network (5 runs) and the attention network (2 runs: ~5 min each on one core) with
#    the same generators' halos (written to a scratch directory, copied here).
for arch in dense attention; do
  runs=$([ $arch = dense ] && echo 5 || echo 2)
  $H classifier --arch $arch --protocol paper --runs $runs $ATT --draws weighted --out results/paper-$arch-log-control
  $H classifier --arch $arch --protocol paper --runs $runs $ATT --augment ddpm --generated $G/ddpm-compact-train-samples \
    --out results/paper-$arch-log-ddpm
  $H classifier --arch $arch --protocol paper --runs $runs $ATT --augment wgan --generated $G/wgan-compact-train-samples \
    --out results/paper-$arch-log-wgan
done
#    Honest grouped protocol, source level.
for folds in 3 2; do
  F=FOLDS$folds
  $H classifier --arch cnn --protocol grouped --folds $folds --repeats 1 $LOG --draws weighted --out results/grouped$folds-cnn-log-control
  $H classifier --arch cnn --protocol grouped --folds $folds --repeats 1 $LOG --augment ddpm --generated ${!F} \
    --out results/grouped$folds-cnn-log-ddpm
  $H classifier --arch dense --protocol grouped --folds $folds --repeats 1 $DENSE --draws weighted --out results/grouped$folds-dense-log-control
  $H classifier --arch dense --protocol grouped --folds $folds --repeats 1 $DENSE --augment ddpm --generated ${!F} \
    --out results/grouped$folds-dense-log-ddpm
done

#    The WGAN-GP's halos in the 2-fold grouped protocol, and the attention network (A) with
#    DDPM and WGAN halos (written to a scratch directory, copied here).
$H classifier --arch cnn --protocol grouped --folds 2 --repeats 1 $LOG --augment wgan --generated $WGAN2 \
  --out results/grouped2-cnn-log-wgan
$H classifier --arch dense --protocol grouped --folds 2 --repeats 1 $DENSE --augment wgan --generated $WGAN2 \
  --out results/grouped2-dense-log-wgan
$H classifier --arch attention --protocol grouped --folds 2 --repeats 1 $ATT --draws weighted --out results/grouped2-attention-log-control
$H classifier --arch attention --protocol grouped --folds 2 --repeats 1 $ATT --augment ddpm --generated $FOLDS2 \
  --out results/grouped2-attention-log-ddpm
$H classifier --arch attention --protocol grouped --folds 2 --repeats 1 $ATT --augment wgan --generated $WGAN2 \
  --out results/grouped2-attention-log-wgan
#    Blind-scan protocol (the shipped model's recipe), 2 folds so that the 2000-step fold DDPMs serve
#    it, three training seeds per arm (~18 min a run, two at a time). Written to scratch directories
#    (their results.json record those paths) and copied to results/ with a filtered log.
for seed in 0 1 2; do
  suffix=$([ $seed = 0 ] && echo "" || echo "-seed$seed")
  $H blind --out results/blind2-cnn-log-control$suffix --training-seed $seed --folds 2 --epochs 30 --steps 40 \
    --patience 6 --no-baselines --cache "${POOL_CACHE:-/tmp/halo-pools}"
  $H blind --out results/blind2-cnn-log-ddpm$suffix --training-seed $seed --folds 2 --epochs 30 --steps 40 \
    --patience 6 --no-baselines --generated $FOLDS2 --cache "${POOL_CACHE:-/tmp/halo-pools}"
  $H blind --out results/blind2-cnn-log-wgan$suffix --training-seed $seed --folds 2 --epochs 30 --steps 40 \
    --patience 6 --no-baselines --generated $WGAN2 --cache "${POOL_CACHE:-/tmp/halo-pools}"
done

# 4. The paired comparisons, the blind pairs also pooled over their training seeds.
$H compare results/paper-cnn-log-control:results/paper-cnn-log-ddpm results/paper-cnn-log-control:results/paper-cnn-log-wgan \
  results/paper-dense-log-control:results/paper-dense-log-ddpm results/paper-dense-log-control:results/paper-dense-log-wgan \
  results/paper-attention-log-control:results/paper-attention-log-ddpm \
  results/paper-attention-log-control:results/paper-attention-log-wgan \
  results/grouped3-cnn-log-control:results/grouped3-cnn-log-ddpm results/grouped3-dense-log-control:results/grouped3-dense-log-ddpm \
  results/grouped2-cnn-log-control:results/grouped2-cnn-log-ddpm results/grouped2-dense-log-control:results/grouped2-dense-log-ddpm \
  results/grouped2-cnn-log-control:results/grouped2-cnn-log-ddpm0 \
  results/blind2-cnn-log-control:results/blind2-cnn-log-ddpm \
  results/blind2-cnn-log-control-seed1:results/blind2-cnn-log-ddpm-seed1 \
  results/blind2-cnn-log-control-seed2:results/blind2-cnn-log-ddpm-seed2 \
  results/grouped2-cnn-log-control:results/grouped2-cnn-log-wgan results/grouped2-dense-log-control:results/grouped2-dense-log-wgan \
  results/grouped2-attention-log-control:results/grouped2-attention-log-ddpm \
  results/grouped2-attention-log-control:results/grouped2-attention-log-wgan \
  results/blind2-cnn-log-control:results/blind2-cnn-log-wgan \
  results/blind2-cnn-log-control-seed1:results/blind2-cnn-log-wgan-seed1 \
  results/blind2-cnn-log-control-seed2:results/blind2-cnn-log-wgan-seed2 \
  --pooled --out docs/generative-results.md

# 5. The DDPM-augmented classifier shipped beside the default: the survey's recipe with halos of a
#    DDPM trained without the fields ship early-stops and calibrates on (halo-train folds --ship),
#    and the 2-fold blind run of that recipe in its card. Written to a scratch directory, copied to models/.
$H ddpm --config compact --split all --exclude "$($H folds --ship | cut -f3)" --steps 2000 --threads 1 --out $G/ddpm-ship
$H generate --model $G/ddpm-ship --n 512 --out $G/ddpm-ship-samples --threads 1
$H ship --out models/halo-classifier-ddpm.onnx --epochs 30 --steps 40 --patience 6 --generated $G/ddpm-ship-samples \
  --cache "${POOL_CACHE:-/tmp/halo-pools}"
$H card-metrics models/halo-classifier-ddpm.onnx --metrics results/blind2-cnn-log-ddpm
