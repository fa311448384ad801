#!/usr/bin/env bash
# Usage: scripts/debian-mirror.sh SUITE
# Prints the first URI this machine's apt sources (one-line or deb822) use for SUITE, or nothing.
# The image build and the fresh-machine test root take their Debian mirror from here, so they
# use the mirror this machine is known to reach.
set -euo pipefail

host_mirror() {
    local suite=$1 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        awk -v s="$suite" '$1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == s) { print $i; exit }
        }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        awk -v s="$suite" 'BEGIN { RS = "" } {
            types = uris = suites = enabled = ""
            n = split($0, lines, "\n")
            for (j = 1; j <= n; j++) {
                if (lines[j] ~ /^Types:/) types = lines[j]
                if (lines[j] ~ /^URIs:/) uris = lines[j]
                if (lines[j] ~ /^Suites:/) suites = lines[j]
                if (lines[j] ~ /^Enabled:/) enabled = lines[j]
            }
            if (types !~ /[ \t]deb([ \t]|$)/ || enabled ~ /no/) next
            m = split(suites, ss, /[ \t]+/)
            for (k = 2; k <= m; k++) if (ss[k] == s) { split(uris, us, /[ \t]+/); print us[2]; exit }
        }' "$f"
    done
}

[[ $# -eq 1 ]] || { echo "usage: $0 SUITE" >&2; exit 2; }
# No pipe into head: under pipefail a SIGPIPE of the awk loop would fail the script.
found=$(host_mirror "$1")
[[ -z $found ]] || printf '%s\n' "${found%%$'\n'*}"
