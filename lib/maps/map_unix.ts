/**
 * `unix:passwd.byname` and `unix:group.byname`, as Postfix's dict_unix:
 * the account or group line for a name, `name:x:uid:gid:gecos:home:shell`
 * or `name:x:gid:members`. Postfix asks getpwnam(3); Deno has none, so the
 * files are read (and re-read when they change). Accounts that exist only
 * through NSS (LDAP, systemd-homed) are not found: such a site lists its
 * users in another table.
 *
 * This is the first table of Postfix's default local_recipient_maps
 * (`proxy:unix:passwd.byname $alias_maps`).
 *
 * @module
 */
import { type DictBackend, DictError } from "./dict.ts";

const FILES: Record<string, string> = {
  "passwd.byname": "/etc/passwd",
  "group.byname": "/etc/group",
};

/** Name -> line of a colon file; NIS "+"/"-" lines and lines without a name are skipped. */
export function parseColonFile(text: string, fields: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < fields || f[0] === "" || /^[+-]/.test(f[0])) continue;
    if (!out.has(f[0])) out.set(f[0], line);
  }
  return out;
}

function fileOf(name: string): string {
  const path = Object.hasOwn(FILES, name.trim()) ? FILES[name.trim()] : undefined;
  if (path === undefined) {
    throw new DictError(
      `unix:${name}: unknown table (supported: ${Object.keys(FILES).join(", ")})`,
      "config",
    );
  }
  return path;
}

/** The unix: backend; `paths` overrides the files and `clock` the time (ms), for tests. */
export function unixBackend(
  paths: Partial<Record<string, string>> = {},
  clock: () => number = Date.now,
): DictBackend {
  return {
    open: (name) => {
      const path = paths[name.trim()] ?? fileOf(name);
      const fields = name.trim() === "passwd.byname" ? 7 : 4;
      let stamp = "";
      let lines = new Map<string, string>();
      // The file is looked at again at most once a second: a stat per
      // lookup cost most of an RCPT's time for a local recipient.
      let checked = 0;
      return Promise.resolve({
        type: "unix",
        name,
        pattern: false,
        async lookup(key: string) {
          try {
            const now = clock();
            if (stamp !== "" && now - checked < 1000) return lines.get(key.toLowerCase());
            checked = now;
            const st = await Deno.stat(path);
            const seen = `${st.size}:${st.mtime?.getTime()}:${st.ino}`;
            if (seen !== stamp) {
              lines = parseColonFile(await Deno.readTextFile(path), fields);
              stamp = seen;
            }
          } catch (e) {
            stamp = "";
            throw new DictError(`unix:${name}: cannot read ${path}: ${(e as Error).message}`);
          }
          // getpwnam() is case-sensitive; the key arrives folded as Postfix folds it.
          return lines.get(key.toLowerCase());
        },
        close: () => Promise.resolve(),
      });
    },
    grants: (name) => Promise.resolve({ read: [paths[name.trim()] ?? fileOf(name)] }),
  };
}
