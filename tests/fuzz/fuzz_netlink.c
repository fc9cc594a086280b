// SPDX-License-Identifier: MIT
/*
 * rtnetlink replies as devices/sriov/netlink.c parses them (libmnl): the
 * input is one receive buffer, walked as nl_transact walks it,  by
 * sriov_nl__parse_reply (what nl_transact calls on each recv): the NLMSG_ERROR
 * with its extended ack, the RTM_NEWLINK with its VF list and VF info
 * attributes. The request it answers is the first message's seq and pid. The buffer is copied into
 * an exactly-sized, 4-byte aligned heap block, as a recv() into the socket buffer would leave it,
 * so that a read past the reply is an ASan report. The first input byte also feeds
 * sriov_nl__parse_mac (a NUL-terminated copy).
 */
#include <stddef.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "devices/sriov/netlink.h"
#include "fuzz.h"

static struct sriov_link nl_link;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seq = 0, portid = 0;
	uint8_t mac[6];
	char msg[512];
	char *s;
	void *buf;
	int ret;

	if (size > 65536)
		return -1;
	/* the MAC parser on the input as a string */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	(void)sriov_nl__parse_mac(s, mac);
	free(s);

	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* the request being answered: the first message's (a reply to someone else is skipped) */
	if (size >= sizeof(struct nlmsghdr)) {
		memcpy(&seq, (const uint8_t *)buf + offsetof(struct nlmsghdr, nlmsg_seq), 4);
		memcpy(&portid, (const uint8_t *)buf + offsetof(struct nlmsghdr, nlmsg_pid), 4);
	}
	msg[0] = 0;
	ret = sriov_nl__parse_reply(buf, size, seq, portid, &nl_link, msg, sizeof(msg));
	if (ret == 0 && nl_link.nr_vfs > SRIOV_NL_MAX_VFS)
		abort();
	if (strnlen(msg, sizeof(msg)) == sizeof(msg))
		abort(); /* the message must be terminated */
	(void)sriov_nl__parse_reply(buf, size, seq, portid, NULL, msg, sizeof(msg));
	free(buf);
	return 0;
}
