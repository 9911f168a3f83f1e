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
 * sendto() (libmnl) and sendmsg() (libnftables).
 *
 * Read-side faults, for applier_netlink_faults.sh: while the file named by
 * EGW_TEST_NL_READ_FAULT_FILE holds "<mode> <count>" (anything after is
 * ignored; a changed line is a new fault), the next <count> reads of an
 * nf_tables netlink socket meet, by mode:
 *   eintr        every other poll() for the socket, every other select()
 *                (libnftables) that would wait (nothing queued), and
 *                every other blocking read that would wait (counted
 *                apart) fails with EINTR: a signal during a kernel wait;
 *   dumpintr     the first reply of a dump read carries NLM_F_DUMP_INTR:
 *                the ruleset changed under the dump;
 *   dumpintr-rules  the same, for rule dumps only (only a read of the
 *                whole table lists rules; counter reads do not);
 *   enobufs      a read fails with ENOBUFS and the next queued answer is
 *                gone: the socket's buffer overran;
 *   enobufs-acks the same, for the first read of a socket after it sent an
 *                nf_tables batch: a transaction's acks lost, its outcome
 *                unknown (libnftables asks for no acks: errors only).
 * EINTR is injected only while SIGHUP could be delivered to the caller
 * (not blocked): a blocked signal interrupts nothing.  Each injection
 * appends its mode to EGW_TEST_NL_FAULT_LOG.  Test-only: never installed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
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

static int acks_fd = -1;	/* a batch went out here; its acks not read yet */
static bool nf_netlink(int fd);

/* Does @buf hold an nfnetlink batch (a transaction)? */
static bool
is_batch(const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;

	return len >= sizeof(*nlh) && nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN;
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
	if (nf_netlink(fd) && is_batch(buf, len))
		acks_fd = fd;
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
	if (nf_netlink(fd) && msg->msg_iovlen >= 1 &&
	    is_batch(msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len))
		acks_fd = fd;
	return real(fd, msg, flags);
}

/* ---- read-side faults ---- */

enum read_fault {
	RF_NONE, RF_EINTR, RF_DUMPINTR, RF_DUMPINTR_RULES, RF_ENOBUFS,
	RF_ENOBUFS_ACKS
};

static unsigned long rf_done;	/* injections so far for the file's count */
static unsigned long rf_polls, rf_reads;	/* eintr: every other call */
static char rf_line[64];	/* the file's content rf_done counts for */

static bool
nf_netlink(int fd)
{
	int domain = 0, proto = 0;
	socklen_t l = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0 ||
	    domain != AF_NETLINK)
		return false;
	l = sizeof(proto);
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 &&
	    proto == NETLINK_NETFILTER;
}

/* Could a signal interrupt the caller now (SIGHUP not blocked)? */
static bool
signal_deliverable(void)
{
	sigset_t cur;

	return sigprocmask(SIG_BLOCK, NULL, &cur) == 0 &&
	    sigismember(&cur, SIGHUP) == 0;
}

/* The mode in force, or RF_NONE once its count is used up. */
static enum read_fault
read_fault(void)
{
	static const struct { const char *name; enum read_fault rf; } modes[] = {
		{ "eintr", RF_EINTR }, { "dumpintr", RF_DUMPINTR },
		{ "dumpintr-rules", RF_DUMPINTR_RULES }, { "enobufs", RF_ENOBUFS },
		{ "enobufs-acks", RF_ENOBUFS_ACKS },
	};
	const char *path = getenv("EGW_TEST_NL_READ_FAULT_FILE");
	char line[64] = "", mode[16] = "";
	unsigned long count = 0;
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		rf_line[0] = '\0';	/* the same instruction again re-arms */
		return RF_NONE;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	if (strcmp(line, rf_line) != 0) {
		/* a new instruction: count from zero */
		snprintf(rf_line, sizeof(rf_line), "%s", line);
		rf_done = 0;
	}
	if (sscanf(line, "%15s %lu", mode, &count) != 2 || rf_done >= count)
		return RF_NONE;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(mode, modes[i].name) == 0)
			return modes[i].rf != RF_EINTR || signal_deliverable() ?
			    modes[i].rf : RF_NONE;
	return RF_NONE;
}

static void
injected(const char *what)
{
	const char *path = getenv("EGW_TEST_NL_FAULT_LOG");
	FILE *f;

	rf_done++;
	if (path != NULL && (f = fopen(path, "a")) != NULL) {
		fprintf(f, "%s\n", what);
		fclose(f);
	}
}

/* Is something queued on @fd (a wait would return at once)? */
static bool
readable_now(int fd)
{
	int (*real_poll)(struct pollfd *, nfds_t, int) = dlsym(RTLD_NEXT, "poll");
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return real_poll(&p, 1, 0) > 0;
}

/* A signal interrupts only a read that waits: blocking, nothing queued. */
static bool
read_would_wait(int fd, int flags)
{
	int fl = fcntl(fd, F_GETFL);

	return !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK) &&
	    !readable_now(fd);
}

/*
 * The applier's own polls come after a request, whose answers netlink
 * queues before the request's send returns, so they hardly ever wait and
 * a signal could not interrupt them; they get EINTR anyway, to exercise
 * the retry.
 */
static bool
poll_fault(struct pollfd *fds, nfds_t n)
{
	if (n == 1 && nf_netlink(fds[0].fd) && read_fault() == RF_EINTR &&
	    rf_polls++ % 2 == 0) {
		injected("eintr-poll");
		errno = EINTR;
		return true;
	}
	return false;
}

int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int (*real)(struct pollfd *, nfds_t, int) = dlsym(RTLD_NEXT, "poll");

	return poll_fault(fds, n) ? -1 : real(fds, n, timeout);
}

/* What _FORTIFY_SOURCE makes of a poll() on an array of known size. */
int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	int (*real)(struct pollfd *, nfds_t, int, size_t) =
	    dlsym(RTLD_NEXT, "__poll_chk");

	return poll_fault(fds, n) ? -1 : real(fds, n, timeout, fdslen);
}

/* libnftables waits with select() on its one socket */
int
select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	int (*real)(int, fd_set *, fd_set *, fd_set *, struct timeval *) =
	    dlsym(RTLD_NEXT, "select");

	if (nfds > 0 && r != NULL && FD_ISSET(nfds - 1, r) &&
	    nf_netlink(nfds - 1) && read_fault() == RF_EINTR &&
	    !readable_now(nfds - 1) && rf_polls++ % 2 == 0) {
		injected("eintr-select");
		errno = EINTR;
		return -1;
	}
	return real(nfds, r, w, e, tv);
}

/* Mark the first dump reply in @buf (of type @type, or any when 0) as from
 * an interrupted dump. */
static bool
interrupt_dump(void *buf, ssize_t len, uint16_t type)
{
	int left = (int)len;

	for (struct nlmsghdr *nlh = buf; NLMSG_OK(nlh, left);
	    nlh = NLMSG_NEXT(nlh, left))
		if ((nlh->nlmsg_flags & NLM_F_MULTI) && nlh->nlmsg_type != NLMSG_DONE &&
		    (type == 0 || nlh->nlmsg_type == type)) {
			nlh->nlmsg_flags |= NLM_F_DUMP_INTR;
			return true;
		}
	return false;
}

/* An overrun: the read fails and the next queued answer is lost. */
static ssize_t
overrun(int fd, const char *what)
{
	ssize_t (*real)(int, void *, size_t, int) = dlsym(RTLD_NEXT, "recv");
	static char lost[1 << 16];

	(void)real(fd, lost, sizeof(lost), MSG_DONTWAIT);
	injected(what);
	errno = ENOBUFS;
	return -1;
}

ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t (*real)(int, struct msghdr *, int) = dlsym(RTLD_NEXT, "recvmsg");
	enum read_fault rf = nf_netlink(fd) ? read_fault() : RF_NONE;
	bool after_batch = fd == acks_fd;
	ssize_t n;

	if (after_batch)
		acks_fd = -1;
	if (rf == RF_EINTR && read_would_wait(fd, flags) && rf_reads++ % 2 == 0) {
		injected("eintr-recv");
		errno = EINTR;
		return -1;
	}
	if (rf == RF_ENOBUFS || (rf == RF_ENOBUFS_ACKS && after_batch))
		return overrun(fd, rf == RF_ENOBUFS ? "enobufs" : "enobufs-acks");
	n = real(fd, msg, flags);
	if (n > 0 && msg->msg_iovlen >= 1 &&
	    ((rf == RF_DUMPINTR && interrupt_dump(msg->msg_iov[0].iov_base, n, 0)) ||
	    (rf == RF_DUMPINTR_RULES && interrupt_dump(msg->msg_iov[0].iov_base, n,
	    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE))))
		injected(rf == RF_DUMPINTR ? "dumpintr" : "dumpintr-rules");
	return n;
}

ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t (*real)(int, void *, size_t, int) = dlsym(RTLD_NEXT, "recv");
	enum read_fault rf = nf_netlink(fd) ? read_fault() : RF_NONE;

	if (rf == RF_EINTR && read_would_wait(fd, flags) && rf_reads++ % 2 == 0) {
		injected("eintr-recv");
		errno = EINTR;
		return -1;
	}
	/* the drain before a request reads with recv() */
	if (rf == RF_ENOBUFS && readable_now(fd))
		return overrun(fd, "enobufs-drain");
	return real(fd, buf, len, flags);
}
