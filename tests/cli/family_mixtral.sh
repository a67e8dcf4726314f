#!/usr/bin/env bash
# Mixtral: block_sparse_moe experts w1/w3/w2, softmax top-2 of 4 renormalised — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family mixtral
