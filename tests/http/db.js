'use strict';
/*
 * The server's SQLite database seen from outside, through Debian's sqlite3
 * CLI (scripts/deps.sh installs it): a text dump of every table, to compare
 * state byte for byte, and PRAGMA integrity_check. Read-only: the server
 * may be running (WAL mode lets a reader in without blocking it).
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const DB_FILE = 'gotuned.db';

function dbPath(dataDir) {
    return path.join(dataDir, DB_FILE);
}

function sqlite(dataDir, ...args) {
    return execFileSync('sqlite3', ['-readonly', '-bail', dbPath(dataDir), ...args],
        { encoding: 'utf8', timeout: 15000, maxBuffer: 256 * 1024 * 1024 });
}

/* Every table's schema and rows as SQL text (.dump). */
function dbDump(dataDir) {
    return sqlite(dataDir, '.dump');
}

/* "ok", or the problems integrity_check lists. */
function integrityCheck(dataDir) {
    return sqlite(dataDir, 'PRAGMA integrity_check;').trim();
}

module.exports = { dbPath, dbDump, integrityCheck, sqlite };
