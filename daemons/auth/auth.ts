/**
 * The auth daemon's service logic: verifies one login name and password
 * per request against the passwd-file smtpd_sasl_path names, and answers
 * ok, fail or temp (lib/sasl/passwd_client.ts has the protocol). It never
 * sends a hash or any other content of the file.
 *
 * The file is read again when its inode, size or modification time
 * changes (checked at each request). What cannot be used is a warning,
 * never a crash: an unreadable or missing file (every login fails as
 * temporary, 454), a symbolic link (refused: a link swapped in would make
 * the daemon read another file it may read), something not a regular
 * file, malformed lines (skipped, each named once per reading).
 *
 * The login name is lowercased before the lookup and answered lowercased,
 * as Dovecot's default auth_username_format (%Lu) does.
 *
 * Parameters: smtpd_sasl_type (passwd-file), smtpd_sasl_path (the file).
 *
 * @module
 */
import type { IpcConn } from "../../lib/ipc/mod.ts";
import { decodeBase64 } from "../../lib/sasl/mod.ts";
import {
  parsePasswdFile,
  type PasswdFile,
  type Verifiers,
  verifyPassword,
} from "../../lib/sasl/passwd_file.ts";
import type { VerifyReply } from "../../lib/sasl/passwd_client.ts";

/** How long an idle client connection is kept. */
const IDLE_MS = 300_000;
/** Largest password file read. */
const MAX_FILE = 16 * 1024 * 1024;

/** File reading, injected for tests. */
export interface AuthFiles {
  lstat: (path: string) => Promise<Deno.FileInfo>;
  open: (path: string) => Promise<Deno.FsFile>;
}

const denoFiles: AuthFiles = {
  lstat: (p) => Deno.lstat(p),
  open: (p) => Deno.open(p, { read: true }),
};

/** The password file of one auth process. */
export class PasswdStore {
  #file: PasswdFile | null = null;
  #stamp = "";
  #problem = "";

  constructor(
    readonly path: string,
    readonly warn: (msg: string) => void,
    readonly verifiers: Verifiers,
    readonly files: AuthFiles = denoFiles,
  ) {}

  /** The parsed file, or an error text (logged once until it changes). */
  async current(): Promise<PasswdFile | string> {
    let st: Deno.FileInfo;
    try {
      st = await this.files.lstat(this.path);
    } catch (e) {
      return this.#fail(`cannot access passwd-file ${this.path}: ${(e as Error).message}`);
    }
    if (st.isSymlink) {
      return this.#fail(
        `passwd-file ${this.path} is a symbolic link; refused (name the file itself)`,
      );
    }
    if (!st.isFile) return this.#fail(`passwd-file ${this.path} is not a regular file`);
    const stamp = `${st.ino}:${st.size}:${st.mtime?.getTime()}`;
    if (this.#file && stamp === this.#stamp) return this.#file;
    let text: string;
    try {
      const f = await this.files.open(this.path);
      try {
        // The file opened must be the one checked (no swap in between).
        const fst = await f.stat();
        if (!fst.isFile || fst.ino !== st.ino || fst.dev !== st.dev) {
          return this.#fail(`passwd-file ${this.path} changed while being opened; try again`);
        }
        if (fst.size > MAX_FILE) {
          return this.#fail(`passwd-file ${this.path} is larger than ${MAX_FILE} bytes`);
        }
        text = await new Response(f.readable).text();
      } finally {
        try {
          f.close();
        } catch {
          // closed by the stream
        }
      }
    } catch (e) {
      return this.#fail(`cannot read passwd-file ${this.path}: ${(e as Error).message}`);
    }
    const parsed = parsePasswdFile(text, this.path);
    for (const w of parsed.warnings) this.warn(w);
    this.#file = parsed;
    this.#stamp = stamp;
    this.#problem = "";
    return parsed;
  }

  #fail(msg: string): string {
    if (msg !== this.#problem) this.warn(msg);
    this.#problem = msg;
    this.#file = null;
    this.#stamp = "";
    return msg;
  }

  /** The answer to one request. */
  async answer(req: Record<string, unknown>): Promise<VerifyReply> {
    if (
      req.op !== "verify" || typeof req.user !== "string" || typeof req.password !== "string" ||
      req.user.length > 255 || req.password.length > 4096
    ) {
      return { status: "temp", text: "malformed request" };
    }
    const password = decodeBase64(req.password);
    if (password === null) return { status: "temp", text: "malformed request" };
    const file = await this.current();
    if (typeof file === "string") return { status: "temp", text: "password file unavailable" };
    const user = req.user.toLowerCase();
    try {
      const ok = await verifyPassword(file, user, password, this.verifiers);
      return ok ? { status: "ok", user } : { status: "fail" };
    } catch (e) {
      this.warn(`${this.path}: user ${req.user}: cannot verify: ${(e as Error).message}`);
      return { status: "temp", text: "verification error" };
    } finally {
      password.fill(0);
    }
  }

  /** Serves one client connection: requests answered one at a time, in order. */
  async serve(conn: IpcConn): Promise<void> {
    for (;;) {
      let req: Record<string, unknown>;
      try {
        req = await conn.recvMsg(IDLE_MS);
      } catch {
        return; // closed, idle or malformed: the client reconnects
      }
      await conn.send(await this.answer(req));
    }
  }
}
