-- SPDX-License-Identifier: MIT
-- This file restates the CHECK constraints that list three or more values
-- ("x IN ('a', 'b', 'c')") as chains of equalities, which admit exactly the
-- same values.
--
-- SQLite 3.40 checks such a list by building a temporary B-tree of it for
-- every row a statement writes (a list of two becomes two comparisons, so
-- those stay): seven of them for a policy update with two destinations,
-- one for every egress_log row.  No row changes: only the tables' SQL text
-- in sqlite_schema, as SQLite's documentation describes for changing a
-- CHECK constraint (lang_altertable.html, "Making Other Kinds Of Table
-- Schema Changes").  RESET re-reads the schema in this connection, inside
-- the transaction, so a text that does not parse fails the migration and
-- rolls it back; the table created and dropped moves the schema cookie, so
-- every other connection re-reads it at its next statement.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (proto IN (''tcp'', ''udp'', ''icmp'', ''any''))',
	'CHECK (proto = ''tcp'' OR proto = ''udp'' OR proto = ''icmp'' OR proto = ''any'')')
	WHERE type = 'table' AND name IN ('profile_rules', 'policy_destinations');
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (origin IN (''host'', ''port'', ''rule''))',
	'CHECK (origin = ''host'' OR origin = ''port'' OR origin = ''rule'')')
	WHERE type = 'table' AND name = 'policy_destinations';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (apply_status IN (''pending'', ''applied'', ''failed''))',
	'CHECK (apply_status = ''pending'' OR apply_status = ''applied'' OR apply_status = ''failed'')')
	WHERE type = 'table' AND name = 'policies';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (operation IN' || char(10, 9) || '            (''create'', ''update'', ''delete'', ''enable'', ''disable'', ''complete'', ''expire''))',
	'CHECK (operation = ''create'' OR operation = ''update'' OR operation = ''delete''' || char(10, 9) ||
	'            OR operation = ''enable'' OR operation = ''disable'' OR operation = ''complete'' OR operation = ''expire'')')
	WHERE type = 'table' AND name = 'policy_history';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (action IN (''allow'', ''deny'', ''would_deny''))',
	'CHECK (action = ''allow'' OR action = ''deny'' OR action = ''would_deny'')')
	WHERE type = 'table' AND name = 'egress_log';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK (scopes IN (''read'', ''write'', ''read,write''))',
	'CHECK (scopes = ''read'' OR scopes = ''write'' OR scopes = ''read,write'')')
	WHERE type = 'table' AND name = 'api_tokens';
PRAGMA writable_schema = RESET;
CREATE TABLE egw_schema_reread (x);
DROP TABLE egw_schema_reread;
