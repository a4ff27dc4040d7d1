# SPDX-License-Identifier: Apache-2.0
# test_kt_ghost_devices_witness.sh: ghost test 4 (test_kt_ghost_devices.sh)
# with a witness: the server names one (--kt-witness), clients take it at
# first contact and need its cosignature (k=1), a real sotto-witness cosigns
# every entry (the operator's substitute too: a split view would need the
# witness to collude), and every refusal and alert happens as without it.
KT_GHOST_WITNESS=1 source "$(dirname "$0")/test_kt_ghost_devices.sh" "$@"
