#!/bin/sh
# Entry point of the ejabberd image: starts the Erlang port mapper and waits until it
# answers, then runs the command. A node that spawns epmd itself may try to register
# before epmd listens; it then stops with "register/listen error: econnrefused" (seen in
# short-lived config-trial containers on a loaded machine).
set -eu

# The health check asks the node itself again until it has started (healthy.sh).
rm -f /tmp/ejabberd-started
epmd -daemon
tries=0
until epmd -names >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 100 ]; then
    echo "start-epmd: epmd did not answer within 10 s" >&2
    exit 1
  fi
  sleep 0.1
done

exec "$@"
