-- SPDX-License-Identifier: MIT
-- This file adds where each accepted scenario.created message sat in its
-- JetStream stream to scenario_event_digests.
--
-- A created message NAKed while the database was busy comes back after a
-- delay, and a later created message for the same scenario can be acted
-- on in between; the old one then overwrote the producer's newer intent.
-- The bridge now keeps the stream's name, the message's stream sequence
-- and the server's time stamp of it (nanoseconds since the epoch), and a
-- created message is stale when the scenario already has an accepted one
-- from the same stream that is later by both (a stream deleted and made
-- again restarts its sequence, not its clock).  NULL: a message that did
-- not come through JetStream (core NATS: no redelivery, no position), and
-- rows from before this migration.
ALTER TABLE scenario_event_digests ADD COLUMN stream TEXT;
ALTER TABLE scenario_event_digests ADD COLUMN stream_seq INTEGER
	CHECK (stream_seq IS NULL OR stream_seq > 0);
ALTER TABLE scenario_event_digests ADD COLUMN stream_ts INTEGER;
