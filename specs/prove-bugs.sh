#!/usr/bin/env bash
# Shows that the suite catches bugs: for each deliberate bug in herd/internal/bug, build our
# herd with it (go build -tags herdbugs; the shipped binary cannot switch any on), run the
# spec that guards the property, and check that the run fails with a message naming it.
# Takes a few minutes; not part of `make test`. Usage: specs/prove-bugs.sh [BUG...]
set -uo pipefail
cd "$(dirname "$0")/.."

missed=0
only=("$@")
prove() {
	local bug=$1 focus=$2 want=$3
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " == *" $bug "* ]]; then
		return
	fi
	local out status
	out=$(HERD_BUGS=$bug go tool ginkgo --focus="$focus" ./specs 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
	status=${PIPESTATUS[0]}
	local line
	line=$(grep -m1 -F -- "$want" <<<"$out" | grep -o -E ".{0,100}$(sed 's/[]\/$*.^+?(){}|[]/\\&/g' <<<"$want").{0,80}")
	if [ "$status" -ne 0 ] && [ -n "$line" ]; then
		printf 'caught  %-24s %s\n' "$bug" "$line"
	else
		printf 'MISSED  %-24s (exit %s; no "%s" in the output)\n' "$bug" "$status" "$want"
		missed=1
	fi
}

prove older-overwrites       'keeps the newest location'                        'must still hold the newer location'
prove whatsat-ignores-bound  'answers WHATSAT at each server'                   'more than the bound'
prove whatsat-names-receiver 'answers WHATSAT at each server'                   'must name the server that received the IAMAT'
prove no-resync              'restarted servers converge Welsh$'                'convergence: not converged'
prove no-reconnect           'isolating a server .* Hands$'                     'convergence: not converged'
prove no-dedup               'sends at most 2E-N\+1 peer messages'             'flooding economy'
exit $missed
