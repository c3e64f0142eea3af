#!/bin/sh
# Keep the regional Kubo nodes off the public network: no bootstrap, no DHT, no mDNS,
# no auto-configuration; they find each other by `ipfs swarm connect` from the stack.
set -e
ipfs config --json Bootstrap '[]'
ipfs config --json Discovery.MDNS.Enabled false
ipfs config Routing.Type none
ipfs config --json AutoConf.Enabled false
