#!/usr/bin/env bash
# GLM (GLM-4-9B-chat-hf): fused mlp.gate_up_proj, q/k/v biases, RoPE on half of each head, interleaved — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family glm
