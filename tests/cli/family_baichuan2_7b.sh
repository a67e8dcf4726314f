#!/usr/bin/env bash
# Baichuan2-7B (remote code): fused W_pack, RoPE, NormHead over 125696 tokens — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family baichuan2-7b
