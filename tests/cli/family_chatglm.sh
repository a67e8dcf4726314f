#!/usr/bin/env bash
# ChatGLM3 (remote code): fused query_key_value with 2 query groups, dense_h_to_4h, half rotary, rope_ratio — through every tool (tests/cli/family_checks.bash).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/family_checks.bash"
check_family chatglm
# ChatGLM3-6B and GLM-4-9B-chat have 2 query groups and run at TP 4 or 8: each group's k and v
# rows are then on several ranks (query_key_value cut by sections, KV replicated).
check_tp 4 "$TMP/chatglm" "$TMP/chatglm-q"
