#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# This file counts which B-trees a WAL's commits wrote (not a test).
#
# usage: bench/api/walpages.py COPY_OF_THE_WAL DATABASE
#
# Reads the WAL's frame headers (page number; a non-zero "database size"
# ends a commit), stops at the first frame whose salt differs (the rest
# is an older generation of the file), and names each page's B-tree with
# SQLite's dbstat table, read-only.  Prints the frames per commit by
# B-tree.  Copy the WAL first (the pool keeps writing it), and let only a
# few commits happen after a wal_checkpoint(TRUNCATE): the default
# checkpoint restarts the WAL every 1,000 pages.
import collections
import sqlite3
import struct
import sys

wal, db = sys.argv[1], sys.argv[2]
data = open(wal, 'rb').read()
page_size = struct.unpack('>I', data[8:12])[0]
salt = data[16:24]
offset, commits, current = 32, [], []
while offset + 24 + page_size <= len(data):
    page, db_size = struct.unpack('>II', data[offset:offset + 8])
    if data[offset + 8:offset + 16] != salt:
        break
    current.append(page)
    if db_size:
        commits.append(current)
        current = []
    offset += 24 + page_size
con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
owner = {page: name for name, page in con.execute('SELECT name, pageno FROM dbstat')}
per_tree = collections.Counter()
for commit in commits:
    for page in commit:
        per_tree[owner.get(page, 'page %d (new or free)' % page)] += 1
if not commits:
    sys.exit('no complete commit in %s' % wal)
print('commits', len(commits), 'frames', sum(len(c) for c in commits))
for name, n in per_tree.most_common():
    print('%6.2f per commit  %s' % (n / len(commits), name))
