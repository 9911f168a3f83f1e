/* SPDX-License-Identifier: MIT */
/*
 * This file contains a fault injector for applier_refusal.sh, loaded into
 * egw-applier with LD_PRELOAD: while the file named by
 * EGW_TEST_NL_REFUSE_FILE exists and holds an IPv4 address, every
 * nf_tables NEWSETELEM message whose elements carry that address is sent
 * with its set's name and id changed, so the kernel refuses the message
 * (ENOENT) and with it the whole transaction, every time: a scenario the
 * kernel will not take.  No real element makes a kernel do that on demand; the
 * refusal itself is the real kernel's, and everything above the system
 * call (libnftnl, libnftables, the applier) is the real thing.  Covers
 * sendto() (libmnl) and sendmsg() (libnftables).  Test-only: never
 * installed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The address to refuse, or 0 while the fault is off. */
static int
refused_addr(struct in_addr *out)
{
	const char *path = getenv("EGW_TEST_NL_REFUSE_FILE");
	char line[64] = "";
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, " \n")] = '\0';
	return inet_pton(AF_INET, line, out) == 1;
}

/* Rename the set of every NEWSETELEM in @buf that carries @addr. */
static void
sabotage(void *buf, size_t len, const struct in_addr *addr)
{
	struct nlmsghdr *nlh = buf;
	int left = (int)len;

	for (; NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left)) {
		size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
		char *p = (char *)nlh + hdr, *end = (char *)nlh + nlh->nlmsg_len;

		if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM) ||
		    nlh->nlmsg_len < hdr ||
		    memmem(p, (size_t)(end - p), addr, sizeof(*addr)) == NULL)
			continue;
		while (p + NLA_HDRLEN <= end) {
			struct nlattr *a = (struct nlattr *)p;

			if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
				break;
			if ((a->nla_type & NLA_TYPE_MASK) == NFTA_SET_ELEM_LIST_SET) {
				char *name = p + NLA_HDRLEN;

				for (size_t i = 0; name[i] != '\0' &&
				    i + NLA_HDRLEN < a->nla_len; i++)
					name[i] = 'z';
			}
			/* a set made in the same transaction is also found by id */
			if ((a->nla_type & NLA_TYPE_MASK) == NFTA_SET_ELEM_LIST_SET_ID &&
			    a->nla_len >= NLA_HDRLEN + 4)
				memset(p + NLA_HDRLEN, 0x7f, 4);
			p += NLA_ALIGN(a->nla_len);
		}
	}
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *,
	    socklen_t) = dlsym(RTLD_NEXT, "sendto");
	struct in_addr addr;

	if (to != NULL && to->sa_family == AF_NETLINK && refused_addr(&addr))
		sabotage((void *)buf, len, &addr);
	return real(fd, buf, len, flags, to, tolen);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t (*real)(int, const struct msghdr *, int) = dlsym(RTLD_NEXT, "sendmsg");
	const struct sockaddr *to = msg->msg_name;
	struct in_addr addr;

	if (to != NULL && to->sa_family == AF_NETLINK && refused_addr(&addr))
		for (size_t i = 0; i < msg->msg_iovlen; i++)
			sabotage(msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len,
			    &addr);
	return real(fd, msg, flags);
}
