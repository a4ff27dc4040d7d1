# SPDX-License-Identifier: Apache-2.0
# test_multidevice_first_kt.sh: test_multidevice_first.sh on a server that
# runs a key-transparency log (--kt 1): bob's account key is checked against
# the log as for a first message from device 1, his list against the log's
# list hash; the older list served is refused by the log's newer one.
FIRST_KT=1 source "$(dirname "$0")/test_multidevice_first.sh" "$@"
