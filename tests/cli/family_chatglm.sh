#!/usr/bin/env bash
# ChatGLM3 (remote code): fused query_key_value with 2 query groups, dense_h_to_4h, half rotary, rope_ratio — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family chatglm
