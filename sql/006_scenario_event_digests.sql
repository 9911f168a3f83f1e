-- SPDX-License-Identifier: MIT
-- This file adds scenario_event_digests: which scenario.created messages
-- egw-natsd has already acted on.
--
-- JetStream delivers at least once: a lost ack, a crash between the commit
-- and the ack, an ack wait that ran out, a durable consumer re-created
-- with "deliver all", or a core subscription replaced by a durable one
-- all hand an old scenario.created to the bridge again.  Compared with the
-- policy as it is now, such a replay re-enabled a policy an operator had
-- disabled, re-created one the operator had deleted (or retention had
-- removed after completion), and undid an operator's narrowing of the
-- allowlist.  The bridge now records the SHA-256 of each created message
-- body it accepted, in the transaction that acted on it, and treats the
-- same bytes for the same scenario as done, whatever the policy's state.
-- A different message for the scenario (the producer's new intent) still
-- applies.  One short row per distinct created message, never pruned:
-- about 120 bytes each (plus the stream's name since sql/007).
CREATE TABLE scenario_event_digests (
	scenario_id TEXT NOT NULL,
	digest      TEXT NOT NULL CHECK (length(digest) = 64),
	accepted_at TEXT NOT NULL,
	PRIMARY KEY (scenario_id, digest)
) WITHOUT ROWID;
