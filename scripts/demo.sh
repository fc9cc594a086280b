#!/usr/bin/env bash
# The main job: installs what is needed, builds minivmm, and boots a Linux guest
# with minivmm inside the nested lab (docs/lab.md): an L1 VM under QEMU TCG with
# nested KVM, an IOMMU and an SR-IOV NIC. Prints the guest's console and the
# measured boot times and iperf3 throughput (minivmm vs QEMU in the same L1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --lab
bash scripts/build.sh
MINIVMM_BIN=$PWD/build/minivmm exec tests/lab/lab.sh run --timeout 1700 \
	--results "$PWD/lab-results/demo" tests/lab/test-boot-net.sh
