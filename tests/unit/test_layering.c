// SPDX-License-Identifier: MIT
/*
 * The layering rule of docs/architecture.md, checked on the sources: only
 * vmm/main.c and vmm/board.c include devices/ or virtio/ headers,
 * migration/ includes nothing from the other layers, and devices/vfio (VF
 * passthrough) and devices/sriov (the PF side on the host) stay apart: what
 * both need lives in devices/pcisys.h, and the host tools that use both
 * (devices/hosttool: `minivmm sriov`, `minivmm doctor`) sit above them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_matches(const char *cmd)
{
	char line[1024];
	int n = 0;
	FILE *p = popen(cmd, "r");

	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		cr_log_error("wrong-way include: %s", line);
		n++;
	}
	pclose(p);
	return n;
}

static const char *src(void)
{
	const char *s = getenv("MINIVMM_SRC");

	cr_assert_not_null(s, "MINIVMM_SRC must point at the source tree");
	return s;
}

Test(layering, core_does_not_include_devices)
{
	char cmd[2048];
	char probe[1200];
	FILE *f;

	snprintf(probe, sizeof(probe), "%s/vmm/kvm.c", src());
	f = fopen(probe, "r");
	cr_assert_not_null(f, "source tree not found at %s", src());
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -rnE '#include \"(devices|virtio)/' vmm | "
		 "grep -vE '^vmm/(main|board)\\.c:'", src());
	cr_assert_eq(count_matches(cmd), 0);
}

Test(layering, migration_is_a_leaf)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -rnE '#include \"(vmm|devices|virtio)/' migration", src());
	cr_assert_eq(count_matches(cmd), 0);
}

Test(layering, devices_and_virtio_stay_apart)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -rnE '#include \"virtio/' devices; "
		 "grep -rnE '#include \"devices/' virtio", src());
	cr_assert_eq(count_matches(cmd), 0);
}

Test(layering, vfio_and_sriov_stay_apart)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -rnE '#include \"devices/(sriov|hosttool)/' devices/vfio; "
		 "grep -rnE '#include \"devices/(vfio|hosttool)/' devices/sriov", src());
	cr_assert_eq(count_matches(cmd), 0);
}
