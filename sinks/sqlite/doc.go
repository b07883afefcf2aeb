// Package sqlite is the embedded default sink: it stores points in one
// local SQLite file, one table per measurement, creating and extending the
// schema as points arrive.
//
// # Schema
//
// Each measurement gets a table named after it. Its columns are:
//
//	time      INTEGER NOT NULL  event time, Unix nanoseconds (UTC)
//	received  INTEGER           when the source received the point, Unix ns
//	time_s    REAL              generated (virtual, not stored): time / 1e9,
//	                            Unix seconds to about 0.25µs, for Grafana
//	<tag>     TEXT              one column per tag key
//	<field>   by kind           REAL for float; INTEGER for int and bool
//	                            (0/1); TEXT for string; no declared type
//	                            for uint (see below)
//
// Columns are added (ALTER TABLE ADD COLUMN) the first time a point carries
// a new tag or field; older rows read NULL there, as do rows whose point
// lacked that key. A column's type is fixed by the first value that created
// it; a later value of another kind is stored under SQLite's type-affinity
// rules (an int in a REAL column becomes a float, a number in a TEXT column
// becomes text).
//
// A uint is stored as an INTEGER when it fits in int64 and otherwise as its
// exact decimal TEXT (SQLite integers are signed 64-bit). Its column has no
// declared type so that SQLite keeps that text as text rather than
// converting it to a lossy float; such values sort after every integer.
// A float NaN is stored as NULL (SQLite has no NaN) and -0 reads back as 0;
// every other float round-trips bit for bit. Points whose event time
// is outside what Unix nanoseconds can hold (years 1678 to 2262) are
// rejected; a zero or out-of-range received time is stored as NULL.
//
// Grafana: the frser-sqlite-datasource plugin converts the columns listed
// under "time formatted columns" from Unix seconds (an INTEGER value),
// fractional Unix seconds (REAL) or RFC 3339 text. Nanoseconds would read
// as far-future seconds, hence time_s: select it and list it there. Filter
// on the indexed time column with Grafana's millisecond range variables:
//
//	SELECT time_s, price FROM trades
//	WHERE symbol = 'BTCUSDT' AND time >= $__from * 1000000 AND time < $__to * 1000000
//	ORDER BY time
//
// The plugin's $__unixEpochGroupSeconds(time_s, 60) buckets fine, but its
// $__timeFilter macro takes only integer seconds or text (it reads a REAL
// as a Julian day) and cannot use the index either: filter on time as
// above. For people, datetime(time_s, 'unixepoch', 'subsec') gives UTC
// text.
//
// # Names
//
// Table and column names are the measurement, tag and field names,
// byte for byte, always quoted ("" escaped) in SQL, so quotes, spaces,
// Unicode and SQL keywords are all fine. SQLite compares names without
// regard to ASCII case, so when a name is already taken in its table (by a
// key differing only in case, by a tag and a field sharing a key, or by a
// reserved column: time, received, time_s, rowid, oid, _rowid_) the
// later arrival gets a suffix: "<key>_tag" or "<key>_field", then
// "<key>_tag_2" and so on. A measurement whose table name is taken (by
// case or by another table or index) gets "<name>_2" and so on; one
// starting with SQLite's reserved prefix sqlite_ gets a leading "_" first.
// Index names follow the same rule. The mapping is stored in the table
// _sluice_names (measurement, role, key, name), role being table, tag,
// field or index, and is stable once assigned. Empty names and names
// containing NUL are rejected.
//
// # Indexes and uniqueness
//
// A new table gets an index on (time), named <table>_by_time, unless its
// key index (below) leads with time, which serves the same queries: a
// second B-tree on time would only cost every row another insert (a
// fifth of the sink's CPU per book level). Queries that filter on a time
// range, with or without some of the tags (the Grafana dashboards'
// queries), use whichever of the two the table has. A table whose key
// later loses time gets the time index then; a time index, once made, is
// kept. Tables made before 2026-12-06 keep both. With series_index: true a new
// table whose first point has tags also gets one on (those tags...,
// time), named <table>_by_series, for queries that filter on every tag
// (SQLite uses an index only for its leading columns); it is a third
// B-tree to update on every row of a keyed measurement, about a fifth of
// the sink's CPU per row (BENCHMARKS.md), hence off by default. Tags first
// seen later are not added to that index; add an index of your own if you
// filter on them. A table created with the series index keeps it.
//
// A measurement declared with uniqueness names (for trades: symbol,
// trade_id) gets a UNIQUE index <table>_key on the columns holding them,
// created as soon as every name has a column: a name means the tag with
// that key, else the field, else for "time" the event time (for candles:
// symbol, interval, time). A key that holds the event time has it as the
// index's first column (time, symbol, interval): new rows of every series
// then go to the end of the index as they do in the time index, where
// ordered series first each series would insert in its own part of the
// B-tree and a commit would rewrite a page per series (2 000 symbols of
// 20-level books wrote 11 000–14 000 rows/s that way, 87 000 time first;
// BENCHMARKS.md). A key index created before 2026-12-06 keeps its column
// order; to reorder it, stop the agent, run DROP INDEX <table>_key, and
// start it: the sink creates it again, time first.
//
// Points are then written with INSERT ... ON CONFLICT (key) DO UPDATE:
// writing the same point twice leaves one row,
// and a later write overwrites every column it carries, keeping the other
// columns' values (as InfluxDB merges the fields of one point). A point
// missing a key column has NULL there and is always inserted, since NULLs
// never conflict. The key index persists (also when a name later turns up
// in the other role too); a later declaration with other names replaces
// it, one with no names leaves it in place. Measurements without a key
// just insert.
//
// The sink never deletes a row on its own. If rows already in the table
// share a newly declared key (rows a feed that is gone wrote under
// another key), Declare refuses it with a *sinks.RefusedError naming the
// table and giving the SQL that lists those rows; the table keeps the key
// it had, and the feed declaring the new key fails with that reason. The
// operator renames the measurement in that feed, or moves or deletes the
// rows, and reloads. (Feeds still configured cannot get this far: the
// agent refuses a key another feed declares for the measurement.) Should
// a key index be missing from the file (dropped by hand) and rows share
// its key meanwhile, the measurement is written without a key, logged as
// an error, rather than failing every write.
//
// # Limits
//
// SQLite allows 2000 columns a table (SQLITE_LIMIT_COLUMN, read from the
// connection), the three fixed ones included. A point that would take its
// table past that is rejected (*sinks.RejectedError) and the rest of its
// batch written: retrying could never store it. The agent's own limits
// (limits.max_columns, limits.max_measurements, per feed) keep a feed well
// inside this.
//
// # Durability
//
// The file runs in WAL mode with synchronous=FULL, one transaction per
// Write: a batch is stored entirely or not at all, and a Write that
// returned nil survives a process crash, an operating-system crash and
// power loss. That costs one fsync per batch (a few per second at default
// batch sizes). FULL rather than NORMAL because the agent advances its own
// buffer past a batch once Write returns: with NORMAL, power loss could
// roll back a commit the agent had already let go of.
package sqlite
