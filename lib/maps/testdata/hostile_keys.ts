/**
 * Keys that try to break out of a SQL string literal or inject SQL, for
 * the SQL table tests (unit and interop).
 *
 * @module
 */

/** Keys that try to break out of the string literal or inject SQL. */
export const HOSTILE_KEYS = [
  "o'brien@example.com",
  "x' OR '1'='1",
  "x' OR 1=1 -- ",
  "x\\' OR 1=1 -- ",
  "\\",
  "\\'",
  "'",
  "''",
  '"',
  "';DROP TABLE t;--",
  "%s",
  "%%",
  "100%@example.com",
  "under_score",
  "café@example.com",
  "日本@example.com",
  "emoji😀@example.com",
  "tab\there",
  "new\nline",
  "ctrl\x1az",
  "back\\slash@example.com",
  "x\\",
];
