/* SPDX-License-Identifier: MIT */
/*
 * `minivmm sriov ...` and `minivmm doctor ...`. argv[0] is the subcommand
 * ("sriov" or "doctor"). Exit codes: 0 success, 1 failure, 2 usage error.
 */
#ifndef MINIVMM_DEVICES_HOSTTOOL_CLI_H
#define MINIVMM_DEVICES_HOSTTOOL_CLI_H

#include <stdio.h>

int sriov_cli__main(int argc, char **argv);
/* the same with explicit output streams (tests) */
int sriov_cli__run(int argc, char **argv, FILE *out, FILE *err);

#endif
