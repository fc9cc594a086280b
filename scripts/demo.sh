#!/usr/bin/env bash
# The main job: installs what is needed, builds minivmm, and runs the nested lab
# demo (docs/lab.md): an L1 VM under QEMU TCG with nested KVM, an IOMMU and an
# igb SR-IOV NIC, in which
#  1. minivmm boots guest.img (virtio-blk root, virtio-net on a bridge to the PF)
#     next to QEMU as the baseline: boot times and iperf3 throughput;
#  2. minivmm boots guest.img with two VFs (`--vf`) driven by the guest's igbvf,
#     plus virtio-net: ping, iperf3 over the VF vs virtio-net, VMM exits per
#     1000 packets, refusals of unfit VFs, `minivmm sriov` and `minivmm doctor`.
# Prints the consoles as they run and the figures at the end; results are kept
# in lab-results/demo-*/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --lab
bash scripts/build.sh
export MINIVMM_BIN=$PWD/build/minivmm
status=0
tests/lab/lab.sh run --timeout 1700 --results "$PWD/lab-results/demo-boot-net" \
	tests/lab/test-boot-net.sh || status=1
tests/lab/lab.sh run --timeout 1300 --results "$PWD/lab-results/demo-vf" \
	tests/lab/test-vf.sh || status=1
for r in lab-results/demo-boot-net lab-results/demo-vf; do
	echo "== $r/results.txt"
	cat "$r/results.txt" 2>/dev/null || echo "(none)"
done
exit $status
