#!/bin/sh
{ printf '%s' "$(date +%s.%N)"; for a in "$@"; do printf ' <%s>' "$a"; done; printf '\n'; } >> /tmp/kacap/out/scripts.log
