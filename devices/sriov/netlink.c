// SPDX-License-Identifier: MIT
/*
 * rtnetlink for VF settings, on libmnl. The kernel side is
 * net/core/rtnetlink.c: do_setvfinfo() for RTM_SETLINK with IFLA_VFINFO_LIST
 * (each IFLA_VF_INFO nest carries the VF number inside every attribute), and
 * rtnl_fill_vf() for RTM_GETLINK when IFLA_EXT_MASK has RTEXT_FILTER_VF.
 * Errors come back as NLMSG_ERROR; with NETLINK_EXT_ACK on, the kernel's
 * message follows as NLMSGERR_ATTR_MSG.
 */
#include "devices/sriov/netlink.h"
#include "devices/pcisys.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NL_RECV_BUF (64 * 1024)

int sriov_nl__parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int n = 0;

	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4],
			 &b[5], &n) != 6 || s[n] || n != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++)
		if ((i % 3 == 2) != (s[i] == ':'))
			return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static struct nlmsghdr *nl_put_link_header(void *buf, size_t len, uint16_t type, uint16_t flags,
					   int ifindex, uint32_t seq)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;

	if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*ifm)))
		return NULL;
	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	return nlh;
}

int sriov_nl__build_setlink(void *buf, size_t len, int ifindex,
			    const struct sriov_vf_config *c, uint32_t seq)
{
	struct nlattr *list, *info;
	struct nlmsghdr *nlh;

	if (!c->set_mac && !c->set_vlan && c->spoofchk < 0 && c->trust < 0)
		return -EINVAL;
	if (c->set_vlan && (c->vlan > 4095 || c->qos > 7))
		return -EINVAL;
	if (c->spoofchk > 1 || c->trust > 1)
		return -EINVAL;
	nlh = nl_put_link_header(buf, len, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex, seq);
	if (!nlh)
		return -ENOSPC;
	list = mnl_attr_nest_start_check(nlh, len, IFLA_VFINFO_LIST);
	if (!list)
		return -ENOSPC;
	info = mnl_attr_nest_start_check(nlh, len, IFLA_VF_INFO);
	if (!info)
		return -ENOSPC;
	if (c->set_mac) {
		struct ifla_vf_mac m = { .vf = c->vf };

		memcpy(m.mac, c->mac, 6);
		if (!mnl_attr_put_check(nlh, len, IFLA_VF_MAC, sizeof(m), &m))
			return -ENOSPC;
	}
	if (c->set_vlan) {
		struct ifla_vf_vlan v = { .vf = c->vf, .vlan = c->vlan, .qos = c->qos };

		if (!mnl_attr_put_check(nlh, len, IFLA_VF_VLAN, sizeof(v), &v))
			return -ENOSPC;
	}
	if (c->spoofchk >= 0) {
		struct ifla_vf_spoofchk s = { .vf = c->vf, .setting = (uint32_t)c->spoofchk };

		if (!mnl_attr_put_check(nlh, len, IFLA_VF_SPOOFCHK, sizeof(s), &s))
			return -ENOSPC;
	}
	if (c->trust >= 0) {
		struct ifla_vf_trust t = { .vf = c->vf, .setting = (uint32_t)c->trust };

		if (!mnl_attr_put_check(nlh, len, IFLA_VF_TRUST, sizeof(t), &t))
			return -ENOSPC;
	}
	mnl_attr_nest_end(nlh, info);
	mnl_attr_nest_end(nlh, list);
	return (int)nlh->nlmsg_len;
}

int sriov_nl__build_getlink(void *buf, size_t len, int ifindex, uint32_t seq)
{
	struct nlmsghdr *nlh;

	nlh = nl_put_link_header(buf, len, RTM_GETLINK, NLM_F_REQUEST, ifindex, seq);
	if (!nlh)
		return -ENOSPC;
	if (!mnl_attr_put_u32_check(nlh, len, IFLA_EXT_MASK, RTEXT_FILTER_VF))
		return -ENOSPC;
	return (int)nlh->nlmsg_len;
}

/*
 * The attributes of message nlh from payload offset off up to exactly its
 * nlmsg_len. mnl_attr_for_each() stops at the aligned length instead, which
 * lies past the message's last byte (and past the buffer it came in) when
 * nlmsg_len is not a multiple of 4 (found by tests/fuzz/fuzz_netlink).
 */
#define nl_attr_for_each(a, nlh, off)                                                    \
	for ((a) = mnl_nlmsg_get_payload_offset((nlh), (off));                           \
	     mnl_attr_ok((a), (int)((const char *)(nlh) + (nlh)->nlmsg_len - (const char *)(a))); \
	     (a) = mnl_attr_next(a))

/* returns true when attribute a carries at least n payload bytes */
static bool nl_attr_has(const struct nlattr *a, size_t n)
{
	return mnl_attr_get_payload_len(a) >= n;
}

static int nl_parse_vf(const struct nlattr *info, struct sriov_vf_state *vf)
{
	const struct nlattr *a;
	bool have_vf = false;

	memset(vf, 0, sizeof(*vf));
	vf->spoofchk = -1;
	vf->trust = -1;
	vf->link_state = -1;
	mnl_attr_for_each_nested(a, info) {
		switch (mnl_attr_get_type(a)) {
		case IFLA_VF_MAC: {
			const struct ifla_vf_mac *m = mnl_attr_get_payload(a);

			if (!nl_attr_has(a, sizeof(*m)))
				return -EINVAL;
			vf->vf = m->vf;
			memcpy(vf->mac, m->mac, 6);
			have_vf = true;
			break;
		}
		case IFLA_VF_VLAN: {
			const struct ifla_vf_vlan *v = mnl_attr_get_payload(a);

			if (!nl_attr_has(a, sizeof(*v)))
				return -EINVAL;
			vf->vlan = (uint16_t)v->vlan;
			vf->qos = (uint8_t)v->qos;
			break;
		}
		case IFLA_VF_SPOOFCHK: {
			const struct ifla_vf_spoofchk *s = mnl_attr_get_payload(a);

			if (!nl_attr_has(a, sizeof(*s)))
				return -EINVAL;
			vf->spoofchk = s->setting > 1 ? -1 : (int)s->setting;
			break;
		}
		case IFLA_VF_TRUST: {
			const struct ifla_vf_trust *t = mnl_attr_get_payload(a);

			if (!nl_attr_has(a, sizeof(*t)))
				return -EINVAL;
			vf->trust = t->setting > 1 ? -1 : (int)t->setting;
			break;
		}
		case IFLA_VF_LINK_STATE: {
			const struct ifla_vf_link_state *l = mnl_attr_get_payload(a);

			if (!nl_attr_has(a, sizeof(*l)))
				return -EINVAL;
			vf->link_state = (int)l->link_state;
			break;
		}
		default:
			break;
		}
	}
	return have_vf ? 0 : -EINVAL;
}

int sriov_nl__parse_link(const struct nlmsghdr *nlh, struct sriov_link *out)
{
	const struct ifinfomsg *ifm;
	const struct nlattr *a, *vfa;
	int ret;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*ifm)))
		return -EINVAL;
	ifm = mnl_nlmsg_get_payload(nlh);
	out->ifindex = ifm->ifi_index;
	nl_attr_for_each(a, nlh, sizeof(*ifm)) {
		switch (mnl_attr_get_type(a)) {
		case IFLA_IFNAME:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
				return -EINVAL;
			snprintf(out->ifname, sizeof(out->ifname), "%s", mnl_attr_get_str(a));
			break;
		case IFLA_NUM_VF:
			if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
				return -EINVAL;
			out->has_num_vf = true;
			out->num_vf = mnl_attr_get_u32(a);
			break;
		case IFLA_VFINFO_LIST:
			mnl_attr_for_each_nested(vfa, a) {
				if (mnl_attr_get_type(vfa) != IFLA_VF_INFO)
					continue;
				if (out->nr_vfs == SRIOV_NL_MAX_VFS)
					break;
				ret = nl_parse_vf(vfa, &out->vfs[out->nr_vfs]);
				if (ret)
					return ret;
				out->nr_vfs++;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

int sriov_nl__parse_error(const struct nlmsghdr *nlh, char *msg, size_t msglen)
{
	const struct nlmsgerr *err;
	const struct nlattr *a;
	size_t off;

	if (msg && msglen)
		msg[0] = '\0';
	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return -EINVAL;
	err = mnl_nlmsg_get_payload(nlh);
	/* 0 or a -errno: anything else (INT_MIN cannot even be negated) is malformed */
	if (err->error > 0 || err->error < -4095)
		return -EINVAL;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return err->error;
	/* TLVs follow the echoed request: its header only when capped */
	off = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		/* an echoed length shorter than a header would wrap off around */
		if (err->msg.nlmsg_len < sizeof(err->msg) || err->msg.nlmsg_len > nlh->nlmsg_len)
			return err->error;
		off += err->msg.nlmsg_len - sizeof(err->msg);
	}
	off = MNL_ALIGN(off);
	if (mnl_nlmsg_size(off) > nlh->nlmsg_len)
		return err->error;
	nl_attr_for_each(a, nlh, off) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
			pcisys__msg_set(msg, msglen, "%s", mnl_attr_get_str(a));
	}
	return err->error;
}

/*
 * One receive buffer of replies. mnl_nlmsg_ok() compares nlmsg_len as an int:
 * a length with the top bit set passes it and mnl_nlmsg_next() then walks
 * backwards out of the buffer, so the length is checked here as unsigned
 * first (found by tests/fuzz/fuzz_netlink).
 */
int sriov_nl__parse_reply(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			  struct sriov_link *link, char *msg, size_t msglen)
{
	const struct nlmsghdr *nlh;
	int left, ret;

	if (len > INT_MAX)
		return -EINVAL;
	left = (int)len;
	for (nlh = buf; left >= (int)sizeof(*nlh) && nlh->nlmsg_len <= (uint32_t)left &&
			mnl_nlmsg_ok(nlh, left);
	     nlh = mnl_nlmsg_next(nlh, &left)) {
		if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid)
			continue;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			char kmsg[256];

			ret = sriov_nl__parse_error(nlh, kmsg, sizeof(kmsg));
			if (ret)
				pcisys__msg_set(msg, msglen, "%s%s%s", strerror(-ret),
						kmsg[0] ? ": " : "", kmsg);
			return ret;
		}
		if (nlh->nlmsg_type == RTM_NEWLINK && link) {
			ret = sriov_nl__parse_link(nlh, link);
			if (ret)
				pcisys__msg_set(msg, msglen, "malformed RTM_NEWLINK reply");
			return ret;
		}
	}
	return 1;
}

struct nl_conn {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	char *buf;
};

static int nl_open(struct nl_conn *c, char *msg, size_t msglen)
{
	int one = 1, ret;

	c->buf = malloc(NL_RECV_BUF);
	if (!c->buf)
		return -ENOMEM;
	c->sock = mnl_socket_open(NETLINK_ROUTE);
	if (!c->sock) {
		ret = -errno;
		pcisys__msg_set(msg, msglen, "cannot open an rtnetlink socket: %s", strerror(-ret));
		goto err_free;
	}
	/* best effort: older kernels have no extended acks */
	mnl_socket_setsockopt(c->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(c->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(c->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		pcisys__msg_set(msg, msglen, "cannot bind an rtnetlink socket: %s", strerror(-ret));
		goto err_close;
	}
	c->portid = mnl_socket_get_portid(c->sock);
	c->seq = (uint32_t)time(NULL);
	return 0;

err_close:
	mnl_socket_close(c->sock);
err_free:
	free(c->buf);
	return ret;
}

static void nl_close(struct nl_conn *c)
{
	mnl_socket_close(c->sock);
	free(c->buf);
}

/*
 * Sends the request in c->buf and reads replies until the one answering it:
 * an RTM_NEWLINK (copied to link when non-NULL) or an NLMSG_ERROR/ack.
 */
static int nl_transact(struct nl_conn *c, size_t len, struct sriov_link *link, char *msg,
		       size_t msglen)
{
	uint32_t seq = ((struct nlmsghdr *)c->buf)->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(c->sock, c->buf, len) < 0) {
		ret = -errno;
		pcisys__msg_set(msg, msglen, "rtnetlink send failed: %s", strerror(-ret));
		return ret;
	}
	for (;;) {
		n = mnl_socket_recvfrom(c->sock, c->buf, NL_RECV_BUF);
		if (n < 0) {
			ret = -errno;
			pcisys__msg_set(msg, msglen, "rtnetlink receive failed: %s", strerror(-ret));
			return ret;
		}
		ret = sriov_nl__parse_reply(c->buf, (size_t)n, seq, c->portid, link, msg, msglen);
		if (ret != 1)
			return ret;
	}
}

static int nl_ifindex(const char *ifname, char *msg, size_t msglen)
{
	unsigned int idx = if_nametoindex(ifname);

	if (!idx) {
		pcisys__msg_set(msg, msglen, "no network interface %s", ifname);
		return -ENODEV;
	}
	return (int)idx;
}

int sriov_nl__set_vf(const char *ifname, const struct sriov_vf_config *cfg, char *msg,
		     size_t msglen)
{
	struct nl_conn c;
	int idx, len, ret;

	idx = nl_ifindex(ifname, msg, msglen);
	if (idx < 0)
		return idx;
	ret = nl_open(&c, msg, msglen);
	if (ret)
		return ret;
	len = sriov_nl__build_setlink(c.buf, NL_RECV_BUF, idx, cfg, ++c.seq);
	if (len < 0) {
		ret = len;
		pcisys__msg_set(msg, msglen, "nothing to set for VF %u", cfg->vf);
		goto out;
	}
	ret = nl_transact(&c, (size_t)len, NULL, msg, msglen);
out:
	nl_close(&c);
	return ret;
}

int sriov_nl__get_link(const char *ifname, struct sriov_link *out, char *msg, size_t msglen)
{
	struct nl_conn c;
	int idx, len, ret;

	idx = nl_ifindex(ifname, msg, msglen);
	if (idx < 0)
		return idx;
	ret = nl_open(&c, msg, msglen);
	if (ret)
		return ret;
	len = sriov_nl__build_getlink(c.buf, NL_RECV_BUF, idx, ++c.seq);
	ret = len < 0 ? len : nl_transact(&c, (size_t)len, out, msg, msglen);
	nl_close(&c);
	return ret;
}
