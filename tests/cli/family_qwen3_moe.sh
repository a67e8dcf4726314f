#!/usr/bin/env bash
# Qwen3-MoE: q/k norms, head_dim 16 over hidden 32, softmax top-2 of 8 experts renormalised, a dense layer (mlp_only_layers) — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family qwen3_moe
