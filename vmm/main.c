// SPDX-License-Identifier: MIT
/* minivmm: parse options, build the board, run until the guest stops. */
#include "config.h"
#include "devices/hosttool/cli.h"
#include "vmm/board.h"
#include "vmm/ctl.h"
#include "vmm/log.h"
#include "vmm/util.h"
#include "vmm/options.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

/* the exit status of a guest whose vCPU triple-faulted: it crashed (0 is a poweroff or a reset it asked for) */
#define MAIN_EXIT_TRIPLE_FAULT 3

static struct board main_board;

/* how long minivmm took from main() to starting the vCPUs, and its CPU time (the boot's first phase) */
static void main_log_setup_time(const struct timespec *t_exec)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	log_info("main", "set-up done in %.0f ms (CPU %.0f ms): starting the vCPUs", ms_since(t_exec),
		 (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
}
static struct termios main_saved_tio;
static bool main_tio_saved;

static void main_signal(int sig)
{
	(void)sig;
	kvm__request_exit(&main_board.vm, VM_EXIT_SIGNAL, 0);
}

/* SIGUSR2: log what the vCPUs and devices are doing (a guest gone silent) */
static void main_inspect_signal(int sig)
{
	(void)sig;
	board__request_inspect(&main_board);
}

static void main_console_raw(void)
{
	struct termios tio;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &main_saved_tio))
		return;
	main_tio_saved = true;
	tio = main_saved_tio;
	/* keys go to the guest (Ctrl-C included); output processing stays on */
	tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
	tio.c_iflag &= ~(tcflag_t)(ICRNL | IXON | INLCR | IGNCR);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSANOW, &tio);
}

static void main_console_restore(void)
{
	if (main_tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &main_saved_tio);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = main_signal };
	struct timespec t_exec;
	struct options o;
	char err[512];
	int reason, ret, selftest = -1;

	clock_gettime(CLOCK_MONOTONIC, &t_exec);
	if (argc > 1 && (!strcmp(argv[1], "sriov") || !strcmp(argv[1], "doctor")))
		return sriov_cli__main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl__main(argc - 1, argv + 1);
	if (options__parse(argc, argv, &o, err, sizeof(err))) {
		fprintf(stderr, "minivmm: %s\nTry 'minivmm --help'.\n", err);
		return 2;
	}
	if (o.action == OPTIONS_HELP) {
		options__usage(stdout, "minivmm");
		return 0;
	}
	if (o.action == OPTIONS_VERSION) {
		printf("minivmm %s\n", MINIVMM_VERSION);
		return 0;
	}
	log__set_level(o.verbosity < 0 ? LOG_ERR : o.verbosity == 0 ? LOG_WARN :
		       o.verbosity == 1 ? LOG_INFO : LOG_DEBUG);
	if (o.seccomp_selftest && (selftest = sandbox__kind_from_name(o.seccomp_selftest)) < 0) {
		fprintf(stderr, "minivmm: --seccomp-selftest '%s': vmm, vcpu or worker\n",
			o.seccomp_selftest);
		return 2;
	}

	ret = board__build(&main_board, &o);
	if (ret) {
		fprintf(stderr, "minivmm: cannot start the VM: %s\n", strerror(-ret));
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = main_inspect_signal;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* seccomp (docs/security.md): filters built now, loaded by each thread after its set-up */
	ret = o.no_seccomp ? 0 : sandbox__prepare();
	if (ret) {
		fprintf(stderr, "minivmm: seccomp: cannot build the filters: %s\n", strerror(-ret));
		board__destroy(&main_board);
		return 1;
	}
	sandbox__set_selftest(selftest);
	if (o.no_seccomp)
		log_warn("seccomp", "off (--no-seccomp): threads run without system call filters");
	else
		log_info("seccomp", "on: %u filters (vmm %u calls, vcpu %u, worker %u)",
			 sandbox__nr_filters(), sandbox__nr_allowed(SANDBOX_VMM),
			 sandbox__nr_allowed(SANDBOX_VCPU), sandbox__nr_allowed(SANDBOX_WORKER));

	main_console_raw();
	main_log_setup_time(&t_exec);
	ret = kvm__vcpus_start(&main_board.vm);
	if (!ret)
		ret = sandbox__enter(SANDBOX_VMM);
	if (ret) {
		fprintf(stderr, "minivmm: cannot start vCPUs: %s\n", strerror(-ret));
		kvm__vcpus_stop(&main_board.vm);
		main_console_restore();
		board__destroy(&main_board);
		return 1;
	}
	evloop__run(&main_board.vm.loop);
	kvm__vcpus_stop(&main_board.vm);
	main_console_restore();

	reason = atomic_load(&main_board.vm.exit_reason);
	ret = atomic_load(&main_board.vm.exit_code);
	if (o.verbosity >= 0)
		fprintf(stderr, "minivmm: %s\n", kvm__exit_reason_name(reason));
	if (o.verbosity > 0)
		board__print_stats(&main_board);
	board__destroy(&main_board);

	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_RESET:
	case VM_EXIT_QUIT:
	case VM_EXIT_MIGRATED:
		return 0;
	case VM_EXIT_TEST:
		return ret & 0xff;
	case VM_EXIT_TRIPLE_FAULT:
		return MAIN_EXIT_TRIPLE_FAULT;
	case VM_EXIT_SIGNAL:
		return 128 + SIGTERM;
	default:
		return 1;
	}
}
