/* SPDX-License-Identifier: MIT */
/*
 * `minivmm ctl [--json] [--timeout S] SOCK COMMAND [ARGS]`: the control
 * socket's client (docs/api.md). Prints the reply for a person, or the raw
 * JSON with --json. Returns the exit status: 0 on success, 1 when the VMM
 * refuses or cannot be reached (its message printed), 2 on a usage error.
 */
#ifndef MINIVMM_VMM_CTL_H
#define MINIVMM_VMM_CTL_H

int ctl__main(int argc, char **argv);

#endif
