#!/bin/sh
# Health check of the ejabberd image. Until the node has said once that it is started, it
# is asked (`ejabberdctl status` starts an Erlang VM of its own: about 0.4 s of CPU each
# time, every second). After that, that the client and HTTP listeners still accept a
# connection is enough, and costs a shell's TCP open. start-epmd removes the marker, so a
# restarted container is asked again.
set -eu

marker=/tmp/ejabberd-started
if [ -e "$marker" ]; then
  exec bash -c '</dev/tcp/127.0.0.1/5222 && </dev/tcp/127.0.0.1/5280'
fi
ejabberdctl status
touch "$marker"
