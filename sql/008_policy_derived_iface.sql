-- SPDX-License-Identifier: MIT
-- This file adds the interface each policy claims through its network_id.
--
-- A policy that names neither sources nor interfaces is enforced on the
-- interface EGW_IFACE_TEMPLATE derives from its network_id.  The store
-- checked explicit interfaces against each other only, so a policy could
-- name, or derive, the interface another scenario derives; the applier
-- then gave the interface to one of them and failed the other.  Writers
-- now record the derived name here and refuse a second claim on it in the
-- change's own transaction.  The template is configuration, not schema:
-- egw-api and egw-natsd compute the column again for every policy when
-- they start, before they write (NULL: the policy names sources or
-- interfaces, has no network_id, or its name cannot be derived).  A row
-- last written by an older program that knew nothing of the column (an
-- egw-natsd not yet restarted during an upgrade) has NULL if it inserted
-- it, or a stale value if it changed the network_id or the sources.
ALTER TABLE policies ADD COLUMN derived_iface TEXT;
CREATE INDEX policies_derived_iface ON policies(derived_iface)
	WHERE derived_iface IS NOT NULL;
