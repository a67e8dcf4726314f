#!/usr/bin/env bash
# GLM-4 (glm4): GLM plus post_self_attn / post_mlp norms on each block's output — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family glm4
