#!/usr/bin/env bash
# The main job: installs what is needed, builds minivmm, and runs the nested lab
# demo (docs/lab.md): an L1 VM under QEMU TCG with nested KVM, an IOMMU and an
# igb SR-IOV NIC, in which
#  1. minivmm boots guest.img (virtio-blk root, virtio-net on a bridge to the PF)
#     next to QEMU as the baseline: boot times and iperf3 throughput;
#  2. minivmm boots guest.img with two VFs (`--vf`) driven by the guest's igbvf,
#     plus virtio-net: ping, iperf3 over the VF vs virtio-net, VMM exits per
#     1000 packets, refusals of unfit VFs, `minivmm sriov` and `minivmm doctor`;
#  3. the failover migration between two hosts (two L1s, each with its own igb
#     PF, one Ethernet segment): the guest keeps an iperf3 stream through its
#     VF, `minivmm ctl migrate` moves it from host a to host b (a's VF
#     unplugged, b's plugged), then QEMU's failover migration of the same
#     guest as the baseline (tests/lab/test-migrate-hosts.sh, docs/lab.md
#     "Two hosts"; about 10 minutes).
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
bash scripts/migrate-hosts.sh --results "$PWD/lab-results/demo-migrate-hosts" || status=1
# the figures as tables (every key stays in the results.txt files)
python3 - lab-results/demo-boot-net/results.txt lab-results/demo-vf/results.txt \
	lab-results/demo-migrate-hosts/results.txt lab-results/demo-migrate-hosts/host-b/results.txt <<'PY'
import sys
r = {}
for path in sys.argv[1:]:
    try:
        for line in open(path):
            k, _, v = line.strip().partition("=")
            r.setdefault(k, v)
    except OSError:
        pass
def g(k):
    return r.get(k) or "n/a"
def ratio(a, b):
    try:
        return "%.2f" % (float(r[a]) / float(r[b]))
    except (KeyError, ValueError, ZeroDivisionError):
        return "n/a"
rows = [
    ("exec to guest ready (default: kernel decompressed by minivmm, cached), s", "minivmm_boot_s", "qemu_boot_s"),
    ("exec to guest ready, --decompress guest, s", "minivmm_guestdec_boot_s", "qemu_boot_s"),
    ("virtio-net TCP guest to L1, Mbit/s", "minivmm_iperf3_tx_mbps", "qemu_iperf3_tx_mbps"),
    ("virtio-net TCP L1 to guest, Mbit/s", "minivmm_iperf3_rx_mbps", "qemu_iperf3_rx_mbps"),
    ("VF TCP guest to L1, Mbit/s", "vf_iperf3_tx_mbps", None),
    ("VF TCP L1 to guest, Mbit/s", "vf_iperf3_rx_mbps", None),
    ("exits to minivmm per 1000 packets over the idle rate, VF", "vf_vmm_exits_per_1000_packets_over_idle", None),
    ("exits to minivmm per 1000 packets over the idle rate, virtio-net", "virtio_vmm_exits_per_1000_packets_over_idle", None),
]
print("| figure (nested lab: compare within the run) | minivmm | QEMU | minivmm / QEMU |")
print("| --- | ---: | ---: | ---: |")
for name, m, q in rows:
    print("| %s | %s | %s | %s |" % (name, g(m), g(q) if q else "-", ratio(m, q) if q else "-"))
print()
print("Live migration with the failover dance, host a to host b (one lab run; both over TLS with the same pre-shared key):")
print()
rows = [
    ("total migration time, ms", "mh_minivmm_total_ms", "mh_qemu_total_ms"),
    ("downtime (guest paused), ms", "mh_minivmm_paused_ms", "mh_qemu_paused_ms"),
    ("unplug wait (the guest's eject of a's VF), ms", "mh_minivmm_eject_ms", "mh_qemu_unplug_ms"),
    ("bytes sent", "mh_minivmm_bytes", "mh_qemu_bytes"),
    ("the guest's TCP stream: longest stall, ms", "mh_minivmm_stall_ms", "mh_qemu_stall_ms"),
    ("guest resumed on b to b's VF carrying the stream, ms", "mh_minivmm_resume_to_traffic_ms", "mh_qemu_resume_to_traffic_ms"),
    ("b's VF plugged to carrying the stream, ms", "mh_minivmm_plug_to_traffic_ms", None),
]
print("| figure | minivmm | QEMU | minivmm / QEMU |")
print("| --- | ---: | ---: | ---: |")
for name, m, q in rows:
    print("| %s | %s | %s | %s |" % (name, g(m), g(q) if q else "-", ratio(m, q) if q else "-"))
if "mh_minivmm_precopy" in r:
    print()
    print("minivmm " + r["mh_minivmm_precopy"].strip('"'))
PY
echo "every figure: lab-results/demo-boot-net/results.txt, lab-results/demo-vf/results.txt, lab-results/demo-migrate-hosts/results.txt (host b: host-b/results.txt)"
echo "the full comparison with QEMU (each path, latency, CPU per packet, memory; a table and plots): bash scripts/bench.sh --quick, docs/benchmarks.md"
exit $status
