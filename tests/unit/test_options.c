// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/options.h"

static int parse(struct options *o, char *err, int argc, ...)
{
	char *argv[32];
	va_list ap;
	int i;

	va_start(ap, argc);
	argv[0] = "minivmm";
	for (i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	argv[argc] = NULL;
	va_end(ap);
	return options__parse(argc, argv, o, err, 256);
}

Test(options, image_alone_uses_defaults)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 2, "guest.img"), 0);
	cr_assert_str_eq(o.image, "guest.img");
	cr_assert_eq(o.mem, 512ULL << 20);
	cr_assert_eq(o.cpus, 1);
	cr_assert_null(o.kernel);
	cr_assert_null(o.cmdline);
	cr_assert_eq(o.action, OPTIONS_RUN);
}

Test(options, overrides)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 14, "--kernel", "k", "--initrd", "i", "--cmdline", "a b",
			   "--mem", "2G", "--cpus", "4", "--net", "tap=t0", "disk.img"), 0);
	cr_assert_str_eq(o.kernel, "k");
	cr_assert_str_eq(o.initrd, "i");
	cr_assert_str_eq(o.cmdline, "a b");
	cr_assert_eq(o.mem, 2ULL << 30);
	cr_assert_eq(o.cpus, 4);
	cr_assert_eq(o.nr_net, 1);
	cr_assert_str_eq(o.net[0], "tap=t0");
	cr_assert_str_eq(o.image, "disk.img");
}

Test(options, help_and_version)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 2, "--help"), 0);
	cr_assert_eq(o.action, OPTIONS_HELP);
	cr_assert_eq(parse(&o, err, 2, "-V"), 0);
	cr_assert_eq(o.action, OPTIONS_VERSION);
}

Test(options, errors_name_the_bad_argument)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 4, "--mem", "lots", "g.img"), -EINVAL);
	cr_assert(strstr(err, "--mem 'lots'"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--mem", "8M", "g.img"), -EINVAL);
	cr_assert(strstr(err, "'8M'"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--cpus", "0", "g.img"), -EINVAL);
	cr_assert(strstr(err, "--cpus '0'"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--cpus", "3x", "g.img"), -EINVAL);
	cr_assert_eq(parse(&o, err, 3, "--frobnicate", "g.img"), -EINVAL);
	cr_assert(strstr(err, "--frobnicate"), "%s", err);
	cr_assert_eq(parse(&o, err, 3, "g.img", "extra"), -EINVAL);
	cr_assert(strstr(err, "'extra'"), "%s", err);
	cr_assert_eq(parse(&o, err, 1), -EINVAL);
	cr_assert(strstr(err, "nothing to boot"), "%s", err);
	cr_assert_eq(parse(&o, err, 2, "--kernel"), -EINVAL);
	cr_assert(strstr(err, "needs an argument"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--initrd", "i", "g.img"), -EINVAL);
	cr_assert(strstr(err, "--initrd 'i' needs --kernel"), "%s", err);
	cr_assert_eq(parse(&o, err, 12, "-n", "a", "-n", "b", "-n", "c", "-n", "d", "-n", "e",
			   "g.img"), -EINVAL);
	cr_assert(strstr(err, "--net 'e'"), "%s", err);
	cr_assert_eq(parse(&o, err, 5, "--hugepages", "--mem", "65M", "g.img"), -EINVAL);
}

Test(options, sizes)
{
	uint64_t v;

	cr_assert_eq(options__parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ULL << 20);
	cr_assert_eq(options__parse_size("1GiB", &v), 0);
	cr_assert_eq(v, 1ULL << 30);
	cr_assert_eq(options__parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(options__parse_size("64k", &v), 0);
	cr_assert_eq(v, 65536);
	cr_assert_eq(options__parse_size("-1M", &v), -EINVAL);
	cr_assert_eq(options__parse_size("1X", &v), -EINVAL);
	cr_assert_eq(options__parse_size("", &v), -EINVAL);
	cr_assert_eq(options__parse_size("99999999999999T", &v), -EINVAL);
}

Test(options, vf_addresses)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 6, "--vf", "0000:03:10.1", "--vf", "0000:03:10.3", "g.img"), 0);
	cr_assert_eq(o.nr_vf, 2);
	cr_assert_str_eq(o.vf[0], "0000:03:10.1");
	cr_assert_str_eq(o.vf[1], "0000:03:10.3");
	cr_assert(!o.vf_allow_unsafe_interrupts);
	cr_assert_eq(parse(&o, err, 5, "--vf", "0000:0A:1f.7", "--vf-allow-unsafe-interrupts",
			   "g.img"), 0);
	cr_assert(o.vf_allow_unsafe_interrupts);

	cr_assert_eq(parse(&o, err, 4, "--vf", "03:10.1", "g.img"), -EINVAL);
	cr_assert(strstr(err, "--vf '03:10.1': expected a PCI address DDDD:BB:DD.F"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:0g:10.1", "g.img"), -EINVAL);
	cr_assert(strstr(err, "hexadecimal"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:20.1", "g.img"), -EINVAL);
	cr_assert(strstr(err, "device 20 is out of range (00-1f)"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:10.8", "g.img"), -EINVAL);
	cr_assert(strstr(err, "function 8 is out of range (0-7)"), "%s", err);
	cr_assert_eq(parse(&o, err, 6, "--vf", "0000:03:10.1", "--vf", "0000:03:10.1", "g.img"),
		     -EINVAL);
	cr_assert(strstr(err, "given twice"), "%s", err);
	cr_assert_eq(parse(&o, err, 3, "--vf", "0000:03:10.1"), -EINVAL);
	cr_assert(strstr(err, "nothing to boot"), "%s", err);
}

Test(options, vf_ids)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 6, "--vf", "0000:03:10.1,id=fast", "--vf", "0000:03:10.3", "g.img"), 0,
		     "%s", err);
	cr_assert_eq(o.nr_vf, 2);
	cr_assert_str_eq(o.vf[0], "0000:03:10.1", "the address alone, without its options");
	cr_assert_str_eq(o.vf_id[0], "fast");
	cr_assert_str_eq(o.vf[1], "0000:03:10.3");
	cr_assert_str_eq(o.vf_id[1], "", "no id=: the board names it vf1");

	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:10.1,id=", "g.img"), -EINVAL);
	cr_assert(strstr(err, "1 to 15 characters"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:10.1,id=9a", "g.img"), -EINVAL);
	cr_assert(strstr(err, "must start with a letter"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:10.1,id=a,id=b", "g.img"), -EINVAL);
	cr_assert(strstr(err, "id given twice"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:10.1,speed=1", "g.img"), -EINVAL);
	cr_assert(strstr(err, "unknown option 'speed=1' (expected failover=on|MAC or id=NAME)"), "%s", err);
	cr_assert_eq(parse(&o, err, 4, "--vf", "0000:03:1x.1,id=a", "g.img"), -EINVAL);
	cr_assert(strstr(err, "hexadecimal"), "%s", err);
	cr_assert_eq(parse(&o, err, 6, "--vf", "0000:03:10.1,id=a", "--vf", "0000:03:10.1,id=b", "g.img"),
		     -EINVAL);
	cr_assert(strstr(err, "given twice"), "%s", err);
}

Test(options, vf_failover)
{
	struct options_vf v;
	char err[256];

	cr_assert_eq(options__parse_vf("0000:03:10.1,failover=on", "--vf", &v, err, sizeof(err)), 0, "%s", err);
	cr_assert(v.failover && !v.has_failover_mac);
	cr_assert_str_eq(v.bdf, "0000:03:10.1");
	cr_assert_eq(options__parse_vf("0000:03:10.1,id=up,failover=52:54:00:ab:cd:0f", "--vf", &v, err,
				       sizeof(err)), 0, "%s", err);
	cr_assert(v.failover && v.has_failover_mac);
	cr_assert_str_eq(v.id, "up");
	cr_assert_eq(v.failover_mac[0], 0x52);
	cr_assert_eq(v.failover_mac[5], 0x0f);
	cr_assert_eq(options__parse_vf("0000:03:10.1,failover=off", "--vf", &v, err, sizeof(err)), 0);
	cr_assert(!v.failover);
	cr_assert_eq(options__parse_vf("0000:03:10.1", "--vf", &v, err, sizeof(err)), 0);
	cr_assert(!v.failover && !v.id[0]);
	cr_assert_eq(options__parse_vf("0000:03:10.1,failover=yes", "device-add vf", &v, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "device-add vf '0000:03:10.1,failover=yes': failover=yes: expected on, off"),
		  "%s", err);
	cr_assert_eq(options__parse_vf("0000:03:10.1,failover=52:54:00:ab:cd", "--vf", &v, err, sizeof(err)),
		     -EINVAL);
	cr_assert_eq(options__parse_vf("0000:03:10.1,failover=on,failover=on", "--vf", &v, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "failover given twice"), "%s", err);
}

Test(options, decompress)
{
	struct options o;
	char err[256];

	cr_assert_eq(parse(&o, err, 2, "guest.img"), 0);
	cr_assert(o.decompress_host, "minivmm decompresses by default (and does the KASLR)");
	cr_assert(!o.kernel_cache && !o.no_kernel_cache, "the default cache");
	cr_assert_not(o.decompress_given, "by default: a kernel minivmm cannot unpack boots as it is");
	cr_assert_eq(parse(&o, err, 4, "--decompress", "guest", "guest.img"), 0);
	cr_assert_not(o.decompress_host);
	cr_assert_eq(parse(&o, err, 4, "--decompress", "host", "guest.img"), 0);
	cr_assert(o.decompress_host && o.decompress_given, "asked for: an unpack failure is an error");
	cr_assert_eq(parse(&o, err, 4, "--kernel-cache", "/k", "guest.img"), 0);
	cr_assert_str_eq(o.kernel_cache, "/k");
	cr_assert_eq(parse(&o, err, 4, "--kernel-cache", "off", "guest.img"), 0);
	cr_assert(!o.kernel_cache && o.no_kernel_cache);
	cr_assert_eq(parse(&o, err, 4, "--kernel-cache", "", "guest.img"), -EINVAL);
	cr_assert_eq(parse(&o, err, 6, "--decompress", "guest", "--kernel-cache", "off", "guest.img"), -EINVAL,
		     "no cache to turn off when the guest decompresses");
	cr_assert_eq(parse(&o, err, 6, "--decompress", "host", "--decompress", "guest", "guest.img"), 0);
	cr_assert_not(o.decompress_host);
	cr_assert_eq(parse(&o, err, 4, "--decompress", "both", "guest.img"), -EINVAL);
	cr_assert(strstr(err, "--decompress") && strstr(err, "'both'"), "%s", err);
}
