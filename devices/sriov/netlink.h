/* SPDX-License-Identifier: MIT */
/*
 * VF settings of an SR-IOV PF through rtnetlink (libmnl): RTM_SETLINK with
 * IFLA_VFINFO_LIST/IFLA_VF_INFO {MAC, VLAN, SPOOFCHK, TRUST} on the PF, and
 * RTM_GETLINK with IFLA_EXT_MASK = RTEXT_FILTER_VF to read them back. Message
 * building and parsing are pure functions; the socket calls wrap them.
 */
#ifndef MINIVMM_DEVICES_SRIOV_NETLINK_H
#define MINIVMM_DEVICES_SRIOV_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRIOV_NL_MAX_VFS 256
#define SRIOV_NL_IFNAMSIZ 16

struct nlmsghdr;

struct sriov_vf_config {
	unsigned int vf;
	bool set_mac;
	uint8_t mac[6];
	bool set_vlan;
	uint16_t vlan;          /* 0 clears the VLAN */
	uint8_t qos;
	int spoofchk;           /* -1 unchanged, 0 off, 1 on */
	int trust;              /* -1 unchanged, 0 off, 1 on */
};

struct sriov_vf_state {
	unsigned int vf;
	uint8_t mac[6];
	uint16_t vlan;
	uint8_t qos;
	int spoofchk;           /* -1 when the driver does not report it */
	int trust;              /* -1 when not reported */
	int link_state;         /* IFLA_VF_LINK_STATE_{AUTO,ENABLE,DISABLE}, -1 unknown */
};

struct sriov_link {
	int ifindex;
	char ifname[SRIOV_NL_IFNAMSIZ];
	bool has_num_vf;        /* IFLA_NUM_VF present (the device has a parent bus) */
	unsigned int num_vf;
	unsigned int nr_vfs;    /* entries filled in vfs[] */
	struct sriov_vf_state vfs[SRIOV_NL_MAX_VFS];
};

/* "52:54:00:12:34:56" to bytes; -EINVAL otherwise */
int sriov_nl__parse_mac(const char *s, uint8_t mac[6]);

/* Builds RTM_SETLINK for one VF into buf; returns the message length or
 * -EINVAL (nothing to set, bad vlan/qos), -ENOSPC (buf too small). */
int sriov_nl__build_setlink(void *buf, size_t len, int ifindex,
			    const struct sriov_vf_config *c, uint32_t seq);
/* Builds RTM_GETLINK for ifindex asking for VF details; length or -ENOSPC */
int sriov_nl__build_getlink(void *buf, size_t len, int ifindex, uint32_t seq);
/* Parses an RTM_NEWLINK message (nlmsg_len bytes, not a byte more, are
 * read); 0, or -EINVAL when malformed */
int sriov_nl__parse_link(const struct nlmsghdr *nlh, struct sriov_link *out);
/* For an NLMSG_ERROR message: its error (0 for an ack) and the kernel's
 * extended-ack text, if any, in msg ("" otherwise). -EINVAL when malformed. */
int sriov_nl__parse_error(const struct nlmsghdr *nlh, char *msg, size_t msglen);

/*
 * Walks one receive buffer of replies for request seq from the kernel to
 * portid: 1 when none of them answers it yet (read on), else what the
 * answer says: the NLMSG_ERROR's error (0 for an ack, msg gets the
 * kernel's text) or the RTM_NEWLINK parsed into link (0 or -EINVAL).
 * Messages whose length does not fit the buffer end the walk.
 */
int sriov_nl__parse_reply(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			  struct sriov_link *link, char *msg, size_t msglen);

/* Applies c to a VF of PF interface ifname; msg gets the kernel's message on failure */
int sriov_nl__set_vf(const char *ifname, const struct sriov_vf_config *c, char *msg,
		     size_t msglen);
/* Reads interface ifname with its VF details */
int sriov_nl__get_link(const char *ifname, struct sriov_link *out, char *msg, size_t msglen);

#endif
