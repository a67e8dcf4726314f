#!/usr/bin/env bash
# Baichuan2-13B (remote code): 40 layers with ALiBi instead of RoPE, fused W_pack, NormHead — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family baichuan2-13b
