/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API pool's spare workers (see spare.h).
 */
#include "spare.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>

#define SPARE_PARK_S 5

enum spare_state {
	SPARE_GONE = 0,		/* no worker in the slot */
	SPARE_ACCEPTING,	/* serving requests, accept() between them */
	SPARE_OUT,		/* waiting for the writer or the applier */
	SPARE_PARKED,
	SPARE_STATES
};

/* The state bytes are shared between processes: an atomic that needed
 * libatomic's (per-process) locks would not be atomic across them. */
_Static_assert(ATOMIC_CHAR_LOCK_FREE == 2, "lock-free atomic bytes");

struct spare {
	size_t map_size;
	unsigned accepting;	/* wanted */
	unsigned slots;
	sem_t wake;		/* posted when a worker steps out */
	_Atomic unsigned char state[];
};

/* This process's view: the region and its own slot. */
static struct spare *spare_self;
static unsigned spare_slot;
static unsigned spare_out_depth;

int
spare_create(unsigned accepting, unsigned slots, struct spare **out)
{
	size_t size = offsetof(struct spare, state) +
	    slots * sizeof(((struct spare *)0)->state[0]);
	struct spare *s = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	*out = NULL;
	if (s == MAP_FAILED)
		return EGW_E_NOMEM;
	if (sem_init(&s->wake, 1, 0) != 0) {
		munmap(s, size);
		return EGW_E_NOMEM;
	}
	s->map_size = size;
	s->accepting = accepting;
	s->slots = slots;
	*out = s;
	return 0;
}

void
spare_destroy(struct spare *s)
{
	if (s == NULL)
		return;
	sem_destroy(&s->wake);
	munmap(s, s->map_size);
}

/* Sequentially consistent, stores and loads alike: each side writes its
 * own byte and then counts the others', and with weaker ordering both a
 * parking and a stepping-out worker could miss the other's byte (the
 * spare sleeps, nobody posts). */
static void
spare_set(struct spare *s, unsigned slot, enum spare_state st)
{
	atomic_store(&s->state[slot], (unsigned char)st);
}

/* How many slots are in each state, in one pass over the bytes. */
static void
spare_tally(const struct spare *s, unsigned n[SPARE_STATES])
{
	for (unsigned st = 0; st < SPARE_STATES; st++)
		n[st] = 0;
	for (unsigned i = 0; i < s->slots; i++) {
		unsigned char st = atomic_load(&s->state[i]);

		if (st < SPARE_STATES)
			n[st]++;
	}
}

static unsigned
spare_count(const struct spare *s, enum spare_state st)
{
	unsigned n[SPARE_STATES];

	spare_tally(s, n);
	return n[st];
}

/*
 * Wake as many parked workers as accepting ones are missing.  One post
 * per gap, not one per call: the counts read one byte at a time, so two
 * spares parking while a worker steps out can each count the other as
 * accepting; with a single post the one that wakes may find no gap yet
 * and sleep again, and the other sleeps on a semaphore at zero (found by
 * a model checker).  A post too many costs the spare that takes it one
 * more count: it accepts only where there is a gap.
 */
static void
spare_fill_gap(struct spare *s)
{
	unsigned n[SPARE_STATES];

	spare_tally(s, n);
	for (unsigned i = 0; n[SPARE_ACCEPTING] + i < s->accepting &&
	    i < n[SPARE_PARKED]; i++)
		sem_post(&s->wake);
}

void
spare_slot_gone(struct spare *s, unsigned slot)
{
	if (s == NULL || slot >= s->slots)
		return;
	/* One that was accepting leaves a gap until its replacement
	 * starts: let a spare fill it. */
	spare_set(s, slot, SPARE_GONE);
	spare_fill_gap(s);
}

void
spare_wake_all(struct spare *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->slots; i++)
		sem_post(&s->wake);
}

void
spare_attach(struct spare *s, unsigned slot)
{
	spare_self = s != NULL && slot < s->slots ? s : NULL;
	spare_slot = slot;
	spare_out_depth = 0;
	if (spare_self != NULL)
		spare_set(s, slot, SPARE_ACCEPTING);
}

void
spare_park_if_surplus(bool (*stopping)(void))
{
	struct spare *s = spare_self;
	struct timespec until;

	if (s == NULL || spare_count(s, SPARE_ACCEPTING) <= s->accepting)
		return;
	spare_set(s, spare_slot, SPARE_PARKED);
	/* Parked for seconds maybe: what the worker holds is written now. */
	log_flush();
	/* Wake or time-out alike, accept again only where there is a gap:
	 * another spare may have filled it first, and a stale post (from a
	 * race) must not unpark anyone. */
	while (!stopping() && spare_count(s, SPARE_ACCEPTING) >= s->accepting) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += SPARE_PARK_S;
		if (sem_clockwait(&s->wake, CLOCK_MONOTONIC, &until) != 0 &&
		    errno != ETIMEDOUT && errno != EINTR) {
			log_warn("spare worker: sem_timedwait");
			break;
		}
	}
	spare_set(s, spare_slot, SPARE_ACCEPTING);
}

void
spare_step_out(void)
{
	struct spare *s = spare_self;

	/* Every wait that may last (the writer's answer, the write lock, a
	 * ?wait) steps out first: the lines the worker holds go now, not
	 * seconds late (log_hold()). */
	log_flush();
	if (s == NULL || spare_out_depth++ > 0)
		return;
	spare_set(s, spare_slot, SPARE_OUT);
	spare_fill_gap(s);
}

void
spare_step_in(void)
{
	struct spare *s = spare_self;

	if (s == NULL || spare_out_depth == 0 || --spare_out_depth > 0)
		return;
	spare_set(s, spare_slot, SPARE_ACCEPTING);
}

bool
spare_census(unsigned *accepting, unsigned *waiting, unsigned *parked)
{
	unsigned n[SPARE_STATES];

	if (spare_self == NULL)
		return false;
	spare_tally(spare_self, n);
	*accepting = n[SPARE_ACCEPTING];
	*waiting = n[SPARE_OUT];
	*parked = n[SPARE_PARKED];
	return true;
}
