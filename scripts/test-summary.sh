#!/usr/bin/env bash
# Passes `go test -v` output through and ends it with a one-line count, so
# long e2e logs close with the verdict. The caller keeps go test's exit
# status with `set -o pipefail`.
pass=0 fail=0 skip=0
while IFS= read -r line; do
	printf '%s\n' "$line"
	case "$line" in
	*"--- PASS:"*) pass=$((pass + 1)) ;;
	*"--- FAIL:"*) fail=$((fail + 1)) ;;
	*"--- SKIP:"*) skip=$((skip + 1)) ;;
	esac
done
echo "e2e: $pass passed, $fail failed, $skip skipped"
