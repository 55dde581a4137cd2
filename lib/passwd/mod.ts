/**
 * The local user database as /etc/passwd states it: parse the file
 * (pure) and look users up by uid or name through a reader that re-reads
 * the file only when it changed.
 *
 * Deno has no getpwuid(3), so accounts that exist only through NSS (LDAP,
 * systemd-homed, ...) are not found here; callers decide what to do then.
 * sendmail and pickup use it for the login name of a submitting uid
 * (Postfix sendmail's default sender); lib/privilege for the mail owner.
 */

/** One /etc/passwd line. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Login shell ("" when the field is empty; absent where an entry is made by hand). */
  shell?: string;
}

/** Parses /etc/passwd text; malformed lines and NIS "+"/"-" lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] === "" || /^[+-]/.test(f[0])) continue;
    if (!/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] });
  }
  return out;
}

/**
 * Lookups in a passwd file, re-read when its size or mtime changes. A
 * file that cannot be read gives no entries; {@link error} says why.
 */
export class PasswdFile {
  #stamp = "";
  #byUid = new Map<number, PasswdEntry>();
  #byName = new Map<string, PasswdEntry>();
  #error: Error | null = null;

  /** @param path @default "/etc/passwd" */
  constructor(readonly path = "/etc/passwd") {}

  /** Why the last read failed, or null. */
  get error(): Error | null {
    return this.#error;
  }

  /** The first entry with this uid (getpwuid order), or null. */
  byUid(uid: number): PasswdEntry | null {
    this.#refresh();
    return this.#byUid.get(uid) ?? null;
  }

  /** The entry with this login name, or null. */
  byName(name: string): PasswdEntry | null {
    this.#refresh();
    return this.#byName.get(name) ?? null;
  }

  #refresh(): void {
    try {
      const st = Deno.statSync(this.path);
      const stamp = `${st.size}:${st.mtime?.getTime()}:${st.ino}`;
      if (stamp === this.#stamp) return;
      const entries = parsePasswd(Deno.readTextFileSync(this.path));
      this.#byUid = new Map();
      this.#byName = new Map();
      for (const e of entries) {
        if (!this.#byUid.has(e.uid)) this.#byUid.set(e.uid, e);
        if (!this.#byName.has(e.name)) this.#byName.set(e.name, e);
      }
      this.#stamp = stamp;
      this.#error = null;
    } catch (e) {
      this.#stamp = "";
      this.#byUid = new Map();
      this.#byName = new Map();
      this.#error = e as Error;
    }
  }
}
