/**
 * The MTA-STS TXT record at "_mta-sts.<domain>" (RFC 8461 section 3.1):
 * "v=STSv1; id=20160831085700Z;". Its id says when the policy changed, so
 * a sender refetches the policy only when the id differs from the one it
 * has cached.
 *
 * Strict to the ABNF: "v=STSv1" first and case-sensitive, fields
 * separated by ";" with optional spaces and tabs, an id of 1 to 32
 * letters and digits, extensions name=value (ignored once checked). Of
 * several "id" fields the first counts (as for policy fields, section
 * 3.2). Pure: the caller looks up the TXT records.
 *
 * @module
 */

/** An extension field of a record (RFC 8461 3.1 sts-extension, RFC 8460 3 tlsrpt-extension). */
export const EXTENSION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}=[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** `s` without leading and trailing spaces and tabs (a loop: a regex would backtrack on long runs). */
export function trimWsp(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === " " || s[a] === "\t")) a++;
  while (b > a && (s[b - 1] === " " || s[b - 1] === "\t")) b--;
  return s.slice(a, b);
}

/**
 * The one record among TXT records that starts with `version` (strings
 * joined) split into its fields at ";" (spaces and tabs around dropped, a
 * trailing ";" allowed), or null: no such record, several, or an empty
 * field or junk after the version.
 */
export function recordFields(txts: string[][], version: string): string[] | null {
  const candidates = txts.map((t) => t.join("")).filter((t) =>
    t.startsWith(version) && (t.length === version.length || " \t;".includes(t[version.length]))
  );
  if (candidates.length !== 1) return null;
  const [rest, ...fields] = candidates[0].slice(version.length).split(";").map(trimWsp);
  if (rest !== "" || fields.length === 0) return null;
  if (fields.length > 1 && fields.at(-1) === "") fields.pop(); // a trailing delimiter
  return fields.includes("") ? null : fields;
}

/**
 * The MTA-STS record among a name's TXT records (each as its character
 * strings, joined without separator), or null: none, or the one record
 * that starts "v=STSv1" is invalid, or there are several (RFC 8461 3.1:
 * then the domain has no usable policy record).
 */
export function parseStsRecord(txts: string[][]): { id: string } | null {
  const fields = recordFields(txts, "v=STSv1");
  if (!fields) return null;
  let id: string | null = null;
  for (const f of fields) {
    const m = /^id=([A-Za-z0-9]{1,32})$/.exec(f);
    if (m) id ??= m[1];
    else if (f.startsWith("id=") || !EXTENSION.test(f)) return null;
  }
  return id === null ? null : { id };
}
